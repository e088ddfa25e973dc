"""Checks deploy/ without a container engine (scripts/test.sh runs it): every file parses, the
compose file's references hold (services, volumes, networks, bind sources, the Dockerfile), the
fixed addresses lie in the subnet outside the dynamic range, every node's bootnodes are exactly
the other validators' p2p addresses, the validator keys and genesis are mounted where the
commands read them, the exporter and Prometheus reach real services on allowed host names, and
Grafana's provisioning, datasource and panel layout agree. The dashboard's metric names are
checked against a live node's /metrics by node/tests/it/deploy.rs.

    python3 deploy/check.py      exit 0 when every check holds; each problem is printed"""
import ipaddress, json, os, re, sys
import yaml

D = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(D)
problems = []
def bad(msg):
    problems.append(msg); print("PROBLEM:", msg)

compose = yaml.safe_load(open(f"{D}/compose.yaml"))
prom = yaml.safe_load(open(f"{D}/prometheus/prometheus.yml"))
ds = yaml.safe_load(open(f"{D}/grafana/provisioning/datasources/prometheus.yaml"))
dp = yaml.safe_load(open(f"{D}/grafana/provisioning/dashboards/taksa.yaml"))
dash = json.load(open(f"{D}/grafana/dashboards/taksa.json"))
print("parsed: compose.yaml, prometheus.yml, 2 provisioning files, taksa.json")

if "version" in compose: bad("compose has a version: key")
services = compose["services"]
declared_vols = set((compose.get("volumes") or {}).keys())
declared_nets = set((compose.get("networks") or {}).keys())
print("services:", ", ".join(services))

# depends_on, volumes, networks
used_vols = set()
for name, svc in services.items():
    dep = svc.get("depends_on") or {}
    deps = dep if isinstance(dep, list) else list(dep.keys())
    for d in deps:
        if d not in services: bad(f"{name} depends on unknown service {d}")
    if isinstance(dep, dict):
        for d, c in dep.items():
            cond = c.get("condition")
            if cond == "service_healthy":
                hc = services[d].get("healthcheck", {})
                img_hc = services[d].get("image", "").startswith("${TAKSA_IMAGE")
                if hc.get("disable") or (not hc and not img_hc):
                    bad(f"{name} waits for {d} healthy but {d} has no healthcheck")
            if cond == "service_completed_successfully" and services[d].get("restart", "no") != "no":
                bad(f"{name} waits for {d} to complete but {d} restarts")
    for v in svc.get("volumes", []):
        src = v.split(":")[0]
        if src.startswith(".") or src.startswith("/"):
            path = os.path.normpath(os.path.join(D, src))
            if not os.path.exists(path): bad(f"{name}: bind source {src} -> {path} missing")
        else:
            used_vols.add(src)
            if src not in declared_vols: bad(f"{name}: volume {src} not declared")
    nets = svc.get("networks")
    if nets:
        for n in (nets if isinstance(nets, list) else nets.keys()):
            if n not in declared_nets: bad(f"{name}: network {n} not declared")
    for p in svc.get("ports", []):
        if not str(p).startswith("127.0.0.1:"): bad(f"{name}: port {p} not on 127.0.0.1")
    if "build" in svc:
        ctx = os.path.normpath(os.path.join(D, svc["build"]["context"]))
        if not os.path.exists(os.path.join(ctx, svc["build"]["dockerfile"])): bad(f"{name}: Dockerfile not found in {ctx}")
for v in declared_vols - used_vols: bad(f"volume {v} declared but unused")

# network addresses
ipam = compose["networks"]["taksa"]["ipam"]["config"][0]
subnet = ipaddress.ip_network(ipam["subnet"]); dyn = ipaddress.ip_network(ipam["ip_range"])
gw = ipaddress.ip_address(ipam["gateway"])
if not dyn.subnet_of(subnet): bad("ip_range outside subnet")
if gw not in subnet or gw in dyn: bad("gateway outside subnet or inside ip_range")
fixed = {}
for name, svc in services.items():
    nets = svc.get("networks")
    if isinstance(nets, dict):
        for n, cfg in nets.items():
            if cfg and "ipv4_address" in cfg:
                ip = ipaddress.ip_address(cfg["ipv4_address"])
                if ip not in subnet: bad(f"{name}: {ip} outside {subnet}")
                if ip in dyn: bad(f"{name}: {ip} inside the dynamic range {dyn}")
                if ip == gw or ip in (subnet.network_address, subnet.broadcast_address): bad(f"{name}: {ip} reserved")
                if ip in fixed.values(): bad(f"{name}: {ip} used twice")
                fixed[name] = ip
print("fixed addresses:", {k: str(v) for k, v in fixed.items()})

# node commands: bootnodes, keys, ports, allowed hosts
nodes = [n for n, s in services.items() if (s.get("command") or [None])[0] == "node"]
validators = [n for n in nodes if any(a.startswith("--validator-key") for a in services[n]["command"])]
ip_to_node = {str(ip): n for n, ip in fixed.items()}
genesis = json.load(open(os.path.join(ROOT, "genesis.json")))
print("nodes:", nodes, "validators:", validators)
if len(validators) != len(genesis["validators"]): bad("validator count differs from the genesis")
for n in nodes:
    svc = services[n]; env = svc["environment"]; cmd = svc["command"]
    if n not in fixed: bad(f"{n} has no fixed address")
    p2p_port = env["TAKSA_P2P_ADDR"].rsplit(":", 1)[1]
    if env["TAKSA_P2P_ADDR"].split(":")[0] != str(fixed[n]): bad(f"{n}: p2p address {env['TAKSA_P2P_ADDR']} is not its fixed address {fixed[n]}")
    if env["TAKSA_RPC_ADDR"] != "0.0.0.0:8545": bad(f"{n}: rpc not 0.0.0.0:8545")
    if n not in env.get("TAKSA_RPC_ALLOWED_HOSTS", "").split(","): bad(f"{n}: its own name is not an allowed RPC host")
    boots = [a.split("=", 1)[1] for a in cmd if a.startswith("--bootnode=")]
    targets = set()
    for b in boots:
        m = re.fullmatch(r"/ip4/([0-9.]+)/tcp/(\d+)", b)
        if not m: bad(f"{n}: bootnode {b} is not /ip4/IP/tcp/PORT"); continue
        ip, port = m.groups()
        t = ip_to_node.get(ip)
        if t not in validators: bad(f"{n}: bootnode {b} is not a validator's fixed address")
        if t == n: bad(f"{n}: bootnode is itself")
        tport = services[t]["environment"]["TAKSA_P2P_ADDR"].rsplit(":", 1)[1]
        if port != tport: bad(f"{n}: bootnode port {port} != {t}'s p2p port {tport}")
        targets.add(t)
    expect = set(validators) - {n}
    if targets != expect: bad(f"{n}: bootnodes {sorted(targets)} != other validators {sorted(expect)}")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
    if mounts.get("/data") != f"{n}-data": bad(f"{n}: /data is not volume {n}-data")
    if mounts.get("/etc/taksa/genesis.json") != "../genesis.json" or not any(v.endswith(":ro") and "genesis" in v for v in svc["volumes"]): bad(f"{n}: genesis not mounted read-only")
    if n in validators:
        i = int(n.replace("validator", ""))
        if f"--validator-key=/data/keystore/validator-{i}.json" not in cmd: bad(f"{n}: key path")
        if "--password-file=/data/password" not in cmd: bad(f"{n}: password file")
        # init mounts this volume at /volumes/validatorI
        if f"{n}-data:/volumes/{n}" not in services["init"]["volumes"]: bad(f"init does not mount {n}-data at /volumes/{n}")
    else:
        if f"{n}-data:/volumes/{n}" not in services["init"]["volumes"]: bad(f"init does not chown {n}-data")
    print(f"  {n}: {fixed[n]}, bootnodes -> {sorted(targets)}")

# exporter
exp = services["exporter"]["command"]
if exp[:2] != ["export", "postgres"]: bad("exporter command")
pairs = [(exp[k], exp[k + 1]) for k in range(2, len(exp), 2)]
if len(exp) % 2 or any(not f.startswith("--") for f, _ in pairs): bad("exporter args are not --flag value pairs")
flags = [f for f, _ in pairs]
exp_env = services["exporter"].get("environment", {})
if flags.count("--rpc") != 2 or flags.count("--database") + ("TAKSA_EXPORT_DATABASE" in exp_env) != 1: bad("exporter flags")
if ("--genesis", "/etc/taksa/genesis.json") not in pairs or "../genesis.json:/etc/taksa/genesis.json:ro" not in services["exporter"].get("volumes", []):
    bad("the exporter does not check its nodes against the mounted genesis")
if "TAKSA_EXPORT_DATABASE" in exp_env:
    pairs.append(("--database", exp_env["TAKSA_EXPORT_DATABASE"]))
for a in [f + "=" + v for f, v in pairs]:
    if a.startswith("--rpc="):
        host, port = re.fullmatch(r"http://([a-z0-9]+):(\d+)", a.split("=", 1)[1]).groups()
        if host not in nodes or port != "8545": bad(f"exporter rpc {a}")
        if host not in services[host]["environment"]["TAKSA_RPC_ALLOWED_HOSTS"].split(","): bad(f"{host} refuses Host {host}")
    if a.startswith("--database="):
        m = re.fullmatch(r"postgres://(\w+):(.+)@(\w+):(\d+)/(\w+)", a.split("=", 1)[1])
        if not m or m.group(3) not in services: bad(f"exporter database {a}")
        pe = services["postgres"]["environment"]
        if m.group(1) != pe["POSTGRES_USER"] or m.group(5) != pe["POSTGRES_DB"] or m.group(2) != pe["POSTGRES_PASSWORD"]: bad("exporter credentials differ from postgres's")
print("exporter:", " ".join(exp))

# prometheus
pt = []
for sc in prom["scrape_configs"]:
    if sc.get("metrics_path", "/metrics") != "/metrics": bad("metrics_path")
    for st in sc["static_configs"]:
        pt += st["targets"]
for t in pt:
    host, port = t.split(":")
    if host not in services: bad(f"prometheus target {t}: no such service")
    elif port != services[host]["environment"]["TAKSA_RPC_ADDR"].rsplit(":", 1)[1]: bad(f"prometheus target {t}: wrong port")
    elif host not in services[host]["environment"]["TAKSA_RPC_ALLOWED_HOSTS"].split(","): bad(f"{host} would refuse Host {host}")
if sorted(h.split(":")[0] for h in pt) != sorted(nodes): bad("prometheus does not scrape exactly the nodes")
print("prometheus targets:", pt)
pv = [v for v in services["prometheus"]["volumes"] if "prometheus.yml" in v][0]
if pv.split(":")[1] != "/etc/prometheus/prometheus.yml" or "--config.file=/etc/prometheus/prometheus.yml" not in services["prometheus"]["command"]: bad("prometheus config path")

# grafana
uid = ds["datasources"][0]["uid"]
if ds["datasources"][0]["url"] != "http://prometheus:9090": bad("datasource url")
var = [v for v in dash["templating"]["list"] if v["type"] == "datasource"][0]
if var["current"]["value"] != uid: bad("dashboard datasource variable default != provisioned uid")
def walk(o, path=""):
    if isinstance(o, dict):
        if "datasource" in o and isinstance(o["datasource"], dict) and o["datasource"].get("type") == "prometheus":
            if o["datasource"]["uid"] not in ("${datasource}", uid): bad(f"panel datasource {o['datasource']}")
        for k, v in o.items(): walk(v, path + "/" + k)
    elif isinstance(o, list):
        for x in o: walk(x, path)
walk(dash)
gv = services["grafana"]["volumes"]
prov_path = dp["providers"][0]["options"]["path"]
if f"./grafana/dashboards:{prov_path}:ro" not in gv: bad("dashboard folder not mounted at the provider path")
home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
if not home.startswith(prov_path + "/") or not os.path.exists(os.path.join(D, "grafana/dashboards", os.path.basename(home))): bad("home dashboard path")
ids = [p["id"] for p in dash["panels"]]
if len(ids) != len(set(ids)): bad("duplicate panel ids")
# overlapping grid positions
cells = set()
for p in dash["panels"]:
    g = p["gridPos"]
    if g["x"] + g["w"] > 24: bad(f"panel {p['title']} wider than the grid")
    for x in range(g["x"], g["x"] + g["w"]):
        for y in range(g["y"], g["y"] + g["h"]):
            if (x, y) in cells: bad(f"panel {p['title']} overlaps another")
            cells.add((x, y))
print("grafana: datasource uid", uid, "; panels", len(dash["panels"]))
print("\n%d problem(s)" % len(problems))
sys.exit(1 if problems else 0)
