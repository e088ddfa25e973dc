#!/bin/sh
# One-shot `init` service of deploy/compose.yaml (runs in the taksa image, as root, with no
# network). For each validator I (0..VALIDATORS-1) it writes into that validator's volume,
# mounted at $VOLUMES/validatorI:
#
#   password                        the keystore password (first line), mode 0600
#   keystore/validator-I.json       validator key I of the mnemonic: m/44'/7331'/I'/1'
#
# exactly as scripts/testnet.sh does (`taksa wallet import --validator --index I --hrp HRP`),
# then checks that the key's address is the genesis's validator I. A volume that already holds
# its key is left as it is (the address is checked again). Finally every node volume under
# $VOLUMES is handed to the image's user (uid/gid 10001), which the nodes run as.
#
# PUBLIC TEST MATERIAL by default: the mnemonic is the published BIP39 test mnemonic and the
# password the fixed public test password of scripts/testnet.sh. Anyone can sign as these
# validators. Never use them for real money.
set -eu

MNEMONIC="${TAKSA_TESTNET_MNEMONIC:-abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about}"
PASSWORD="${TAKSA_TESTNET_PASSWORD:-taksa-public-testnet-password-not-secret}"
GENESIS="${TAKSA_GENESIS:-/etc/taksa/genesis.json}"
VOLUMES="${TAKSA_INIT_VOLUMES:-/volumes}"
VALIDATORS="${TAKSA_VALIDATORS:-4}"
NODE_UID="${TAKSA_UID:-10001}"
NODE_GID="${TAKSA_GID:-10001}"

say() { printf 'init: %s\n' "$*"; }
die() {
  printf 'init: error: %s\n' "$*" >&2
  exit 1
}

[ -r "$GENESIS" ] || die "no genesis at $GENESIS (compose mounts ../genesis.json there)"
command -v taksa >/dev/null 2>&1 || die "the taksa binary is not on PATH"

# The genesis's address prefix ("address_hrp").
hrp="$(tr -d '\n\r' <"$GENESIS" | sed -n 's/.*"address_hrp"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')"
[ -n "$hrp" ] || die "cannot read address_hrp from $GENESIS"

# genesis_validator I: the address of the genesis's validator I (the I-th "address" inside the
# "validators" array), or nothing. Plain awk over the JSON text: the image has no python or jq.
genesis_validator() {
  tr -d '\n\r' <"$GENESIS" | awk -v want="$1" '
    {
      i = index($0, "\"validators\"")
      if (i == 0) exit
      rest = substr($0, i + length("\"validators\""))
      i = index(rest, "[")
      if (i == 0) exit
      rest = substr(rest, i + 1)
      # The array ends at the first "]": validator entries hold no arrays.
      j = index(rest, "]")
      if (j > 0) rest = substr(rest, 1, j - 1)
      n = 0
      while (match(rest, /"address"[ \t]*:[ \t]*"[^"]*"/)) {
        field = substr(rest, RSTART, RLENGTH)
        rest = substr(rest, RSTART + RLENGTH)
        sub(/^"address"[ \t]*:[ \t]*"/, "", field)
        sub(/"$/, "", field)
        if (n == want) { print field; exit }
        n++
      }
    }'
}

# keystore_address FILE: the "address" a keystore file records.
keystore_address() {
  tr -d '\n\r' <"$1" | sed -n 's/.*"address"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p'
}

i=0
while [ "$i" -lt "$VALIDATORS" ]; do
  vol="$VOLUMES/validator$i"
  [ -d "$vol" ] || die "no volume mounted at $vol"
  key="$vol/keystore/validator-$i.json"
  expect="$(genesis_validator "$i")"
  [ -n "$expect" ] || die "$GENESIS lists no validator $i"
  if [ ! -s "$vol/password" ]; then
    (umask 077 && printf '%s\n' "$PASSWORD" >"$vol/password")
  fi
  if [ -f "$key" ]; then
    say "validator $i: $key exists; keeping it"
  else
    say "validator $i: importing validator key $i (m/44'/7331'/$i'/1') into $vol/keystore"
    printf '%s\n' "$MNEMONIC" | taksa wallet import --name "validator-$i" --index "$i" --validator \
      --hrp "$hrp" --keystore "$vol/keystore" --password-file "$vol/password" >/dev/null ||
      die "importing validator key $i failed (see above)"
  fi
  addr="$(keystore_address "$key")"
  [ "$addr" = "$expect" ] ||
    die "validator key $i ($key) has address '$addr' but the genesis lists $expect as validator $i: is $GENESIS the genesis of these keys? (to start over, remove the volumes: docker compose down -v)"
  say "validator $i: address $addr matches the genesis"
  i=$((i + 1))
done

# Hand every node volume (validators and full nodes) to the user the nodes run as.
for vol in "$VOLUMES"/*; do
  [ -d "$vol" ] || continue
  chown -R "$NODE_UID:$NODE_GID" "$vol"
  chmod 0750 "$vol"
done
say "done: $VALIDATORS validator key(s) in place; volumes owned by $NODE_UID:$NODE_GID"
