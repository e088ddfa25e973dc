// Compiled with `tsc --noEmit` by test/types.test.mjs: the public types work as a TypeScript
// user writes them (results typed from rpc/openrpc.json, narrowing of events, the ws package's
// WebSocket accepted on Node 20, the browser's WebSocket too).
import WebSocket from 'ws';

import {
  type AccountProof,
  type ChainInfo,
  Client,
  type HistoryPage,
  Keypair,
  RpcError,
  type RpcMethods,
  type SearchResult,
  type TxStatus,
  verifyMessage,
  verifyReceipt,
  devGenesis,
} from '@taksa/sdk';

export async function usage(): Promise<void> {
  const client = new Client('http://127.0.0.1:8545', { WebSocket });
  const browser = new Client('ws://127.0.0.1:8545', { WebSocket: globalThis.WebSocket });
  const info: ChainInfo = await client.chainGetInfo();
  const height: number = info.finalizedHeight;
  const fee: string = info.feeFloor;
  const page: HistoryPage = await client.accountGetHistory('tdev1…', { limit: 5, order: 'oldest' });
  const next: string | null = page.nextCursor;
  const proof: AccountProof = await client.accountGetProof('tdev1…', 12);
  const status: TxStatus = await client.txGet('0x…');
  const found: SearchResult = await client.explorerSearch('12');
  if (found.kind === 'block') {
    const h: number = found.block.height;
    void h;
  }
  const nonce: RpcMethods['account_getNonce']['result'] = await client.accountGetNonce('tdev1…');
  for await (const e of client.eventsSubscribe({ fromHeight: 1 })) {
    if (e.type === 'transfer') {
      const amount: string = e.transfer.amount;
      void amount;
    } else {
      const txs: number = e.block.txCount;
      void txs;
    }
  }
  for await (const head of client.chainSubscribeNewHeads()) {
    if (head.status === 'finalized') void head.cursor;
  }
  try {
    await client.txSubmit('0x00');
  } catch (e) {
    if (e instanceof RpcError && e.is('nonce_gap')) void e.data;
  }
  const paid = verifyReceipt(await client.receipt('0x…'), devGenesis(200), { expectedHash: '0x…' });
  const amount: bigint = paid.tx.tx.amount;
  const forgeable: 'dev' | 'testnet' | null = paid.publicValidatorKeys;
  const key = Keypair.fromMnemonic('…');
  const signature: Uint8Array = key.signMessage('log in');
  const ok: boolean = verifyMessage(key.address('tdev'), 'log in', signature);
  const pooled = new Client('ws://127.0.0.1:8545', { WebSocket, subscriptionsPerConnection: 16, idleTimeoutMs: 30_000 });
  void pooled.eventsSubscribe({ fromHeight: 1 }).stats.stalls;
  // @ts-expect-error: chain_getBlock takes a block id, not an object
  await client.chainGetBlock({ height: 1 });
  // @ts-expect-error: an unknown history option
  await client.accountGetHistory('tdev1…', { limitt: 5 });
  void [browser, height, fee, next, proof, status, nonce, amount, forgeable, ok, Keypair];
}
