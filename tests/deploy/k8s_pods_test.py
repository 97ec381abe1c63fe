#!/usr/bin/env python3
"""Kubernetes deployment test: the manifests' own containers, run as pods.

Reads k8s/*.yaml and runs each Job's container command, arguments and
environment exactly as written there, in "pods": one network namespace each
on a shared bridge, a host name and /etc/hosts that resolve every pod as
<pod>.<headless service> (and the rdzv Service by its name) as cluster DNS
does, the container's volumes mounted at their mountPaths (claims as shared
folders, the ConfigMap and Secret as files, emptyDir per pod) and the image's
tools in /usr/local/bin (pod_run.sh). Only what a user sets is changed: the
node count (2 pods), the training config in the ConfigMap (a tiny GPT), the
standalone server's timeouts (seconds instead of 30 s).

  1. static: the CPU and GPU variants run the same command; every Job passes
     --checkpoint_dir under its checkpoint volume and --val_pattern, mounts
     data and checkpoints, and leaves --nproc_per_node to PET_NPROC_PER_NODE;
  2. indexed-job-cpu.yaml: 2 pods train to the config's step count;
  3. rdzv-server.yaml + elastic-job-cpu.yaml: 3 pods (NNODES 2:4) train;
     deleting one pod mid-run (SIGTERM to its pid 1, SIGKILL after the grace
     period) leaves 2, which resume from the checkpoint at world size 2 (the
     minimum) and finish.

Usage: k8s_pods_test.py BUILD_DIR SOURCE_DIR. Exit 77 (skipped) where the
machine cannot run it (not root, no network namespaces). Every pod and
namespace it made is removed on any exit.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import yaml
except ImportError:  # Debian's python3-yaml is in the system interpreter
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIPPED: python3 has no yaml module (apt-get install python3-yaml)")
    sys.exit(77)

BUILD = os.path.abspath(sys.argv[1])
SRC = os.path.abspath(sys.argv[2])
HERE = os.path.join(SRC, "tests", "deploy")
K8S = os.path.join(SRC, "k8s")
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOOLS = {
    "launcher": "launcher/launcher",
    "rdzv_server": "launcher/server/rdzv_server",
    "train": "runtime/trainer/train",
    "tokenize": "runtime/data/tokenize",
    "ckpt_tool": "runtime/checkpoint/ckpt_tool",
}
TINY = ('model { kind: "gpt" n_layer: 2 n_head: 2 n_embd: 32 max_seq_len: 32 vocab_size: 256 }\n'
        "data { batch_size: 4 seq_len: 32 }\n"
        "log_every: 10\neval_every: 0\nthreads: 1\n")


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, **kw).stdout


def load(name):
    with open(os.path.join(K8S, name)) as f:
        return {d["kind"]: d for d in yaml.safe_load_all(f) if d}


def container(job):
    return job["spec"]["template"]["spec"]["containers"][0]


def env_of(c):
    return {e["name"]: e["value"] for e in c.get("env", [])}


def command_text(c):
    return " ".join(c.get("command", []) + c.get("args", []))


# ---------------------------------------------------------------- static checks
def static_checks():
    for kind in ("indexed-job", "elastic-job"):
        gpu, cpu = load(kind + ".yaml"), load(kind + "-cpu.yaml")
        cg, cc = container(gpu["Job"]), container(cpu["Job"])
        check(cg["command"] == cc["command"] and cg["args"] == cc["args"],
              f"{kind}: the CPU and GPU variants run different commands")
        eg, ec = env_of(cg), env_of(cc)
        check(eg.keys() == ec.keys() and all(eg[k] == ec[k] for k in eg if k != "PET_NPROC_PER_NODE"),
              f"{kind}: the variants' environments differ beyond PET_NPROC_PER_NODE")
        check(eg.get("PET_NPROC_PER_NODE") == "gpu", f"{kind}.yaml: PET_NPROC_PER_NODE is not gpu")
        check("nvidia.com/gpu" not in str(cc.get("resources")), f"{kind}-cpu.yaml asks for GPUs")
        for name, doc in ((kind + ".yaml", gpu), (kind + "-cpu.yaml", cpu)):
            c = container(doc["Job"])
            text = command_text(c)
            check("--nproc_per_node" not in text, f"{name}: --nproc_per_node in the command overrides PET_NPROC_PER_NODE")
            check("--val_pattern" in text, f"{name}: no --val_pattern (train exits 2 without it)")
            mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
            vols = {v["name"]: v for v in doc["Job"]["spec"]["template"]["spec"]["volumes"]}
            m = re.search(r"--checkpoint_dir=(\S+)", text)
            check(m is not None, f"{name}: no --checkpoint_dir")
            check("checkpoints" in mounts and m.group(1).startswith(mounts["checkpoints"] + "/"),
                  f"{name}: --checkpoint_dir is not on the checkpoint volume")
            check("persistentVolumeClaim" in vols["checkpoints"] and "persistentVolumeClaim" in vols["data"],
                  f"{name}: data or checkpoints is not a claim")
            check("/data/" in text and mounts.get("data") == "/data", f"{name}: data volume not at /data")
            check("--config=/config/" in text and mounts.get("config") == "/config", f"{name}: no config")
        job = cpu["Job"]["spec"]
        if kind == "indexed-job":
            check(job["completions"] == job["parallelism"] == int(ec["PET_NNODES"]),
                  f"{kind}: completions, parallelism and PET_NNODES disagree")


# ---------------------------------------------------------------- pods
class Net:
    """The pods' network (netns_lib.sh): one namespace per pod, names resolved."""

    def __init__(self, prefix, subnet, specs):
        self.prefix = prefix
        out = sh(os.path.join(HERE, "netns_lib.sh"), "create", prefix, subnet, *specs)
        self.addr = dict(line.split() for line in out.splitlines())

    def destroy(self):
        subprocess.run([os.path.join(HERE, "netns_lib.sh"), "destroy", self.prefix])

    def kill_all(self, name):
        pids = subprocess.run(["ip", "netns", "pids", f"{self.prefix}-{name}"],
                              capture_output=True, text=True).stdout.split()
        for p in pids:
            try:
                os.kill(int(p), signal.SIGKILL)
            except ProcessLookupError:
                pass


class Pod:
    def __init__(self, work, net, name, spec, volumes, extra_env=None, args=None):
        """spec: a pod template's spec; volumes: claim/configMap/secret name -> folder."""
        self.name, self.net = name, net
        c = spec["containers"][0]
        self.log_path = os.path.join(work, "pods", name + ".log")
        scratch = os.path.join(work, "pods", name, "scratch")
        os.makedirs(scratch)
        hosts = f"/etc/netns/{net.prefix}-{name}/hosts"
        cmd = ["unshare", "-m", "-u", "--propagation", "private", os.path.join(HERE, "pod_run.sh"),
               f"{net.prefix}-{name}", name, hosts, scratch,
               "-v", f"{work}/image-bin:/usr/local/bin:ro", "-w", "/workspace"]
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for m in c.get("volumeMounts", []):
            v = vols[m["name"]]
            if "persistentVolumeClaim" in v:
                src = volumes[v["persistentVolumeClaim"]["claimName"]]
            elif "configMap" in v:
                src = volumes[v["configMap"]["name"]]
            elif "secret" in v:
                src = volumes[v["secret"]["secretName"]]
            elif "emptyDir" in v:
                src = os.path.join(work, "pods", name, m["name"])
                os.makedirs(src)
            else:
                raise Failure(f"volume {m['name']}: kind not emulated")
            cmd += ["-v", f"{src}:{m['mountPath']}" + (":ro" if m.get("readOnly") else "")]
        env = {"PATH": IMAGE_PATH, "HOME": "/root", "HOSTNAME": name}
        env.update(env_of(c))
        env.update(extra_env or {})
        for k, v in env.items():
            cmd += ["-e", f"{k}={v}"]
        cmd += ["--"] + c.get("command", []) + (args if args is not None else c.get("args", []))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def delete(self, grace_s):
        """kubectl delete pod: SIGTERM to pid 1, SIGKILL to all after the grace period."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
        self.net.kill_all(self.name)
        self.proc.wait()

    def wait(self, timeout_s):
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise Failure(f"pod {self.name} still running after {timeout_s} s")


def max_step(text):
    steps = [int(m) for m in re.findall(r"\] step +(\d+)/", text)]
    return max(steps) if steps else 0


def wait_for(pred, timeout_s, what):
    end = time.time() + timeout_s
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    raise Failure(f"timed out ({timeout_s} s) waiting for {what}")


def newest_checkpoint(d):
    out = subprocess.run([os.path.join(BUILD, TOOLS["ckpt_tool"]), "list", d], capture_output=True, text=True).stdout
    steps = [int(s) for s in re.findall(r"step_(\d+)", out)]
    return max(steps) if steps else 0


def setup_volumes(work, config_text):
    """Claims, the ConfigMap (the manifest's, its config replaced) and the Secret."""
    os.makedirs(os.path.join(work, "image-bin"))
    for tool, rel in TOOLS.items():
        os.symlink(os.path.join(BUILD, rel), os.path.join(work, "image-bin", tool))
    vols = {}
    for claim in ("anvil-data", "anvil-checkpoints"):
        vols[claim] = os.path.join(work, "claims", claim)
        os.makedirs(vols[claim])
    cfg = load("train-config.yaml")["ConfigMap"]
    vols[cfg["metadata"]["name"]] = os.path.join(work, "configmap")
    os.makedirs(vols[cfg["metadata"]["name"]])
    check(list(cfg["data"]) == ["train.textproto"], "train-config.yaml: unexpected keys")
    with open(os.path.join(vols[cfg["metadata"]["name"]], "train.textproto"), "w") as f:
        f.write(config_text)
    vols["anvil-train-token"] = os.path.join(work, "secret")
    os.makedirs(vols["anvil-train-token"])
    with open(os.path.join(vols["anvil-train-token"], "token"), "w") as f:
        f.write(os.urandom(16).hex())
    sh(os.path.join(BUILD, TOOLS["tokenize"]), "--out_dir", vols["anvil-data"], "--val_fraction", "0.1",
       *sorted(os.path.join("/usr/share/common-licenses", n) for n in os.listdir("/usr/share/common-licenses")))
    return vols


def indexed_job(work, subnet):
    steps = 60
    vols = setup_volumes(work, TINY + f"steps: {steps}\ncheckpoint_every: 20\n")
    docs = load("indexed-job-cpu.yaml")
    svc, job = docs["Service"]["metadata"]["name"], docs["Job"]
    spec = job["spec"]["template"]["spec"]
    check(spec["subdomain"] == svc, "indexed job: subdomain is not the headless Service")
    n = 2  # the user's node count: completions = parallelism = PET_NNODES
    names = [f"{job['metadata']['name']}-{i}" for i in range(n)]
    net = Net(f"anvk8s{os.getpid()}", subnet, [f"{p}={p}.{svc},{p}.{svc}.default.svc.cluster.local" for p in names])
    pods = []
    try:
        t0 = time.time()
        for i, p in enumerate(names):
            pods.append(Pod(work, net, p, spec, vols, {"JOB_COMPLETION_INDEX": str(i), "PET_NNODES": str(n)}))
        for p in pods:
            rc = p.wait(150)
            check(rc == 0, f"{p.name} exited {rc}:\n{p.output()[-3000:]}")
        out = "".join(p.output() for p in pods)
        check("world size 2" in out, "the indexed job did not form a 2-pod group")
        check(re.search(rf"\] step +{steps}/{steps} ", out) and "done:" in out,
              f"the indexed job did not reach step {steps}")
        ckpt = os.path.join(vols["anvil-checkpoints"], "anvil-train")
        check(newest_checkpoint(ckpt) == steps, f"no step-{steps} checkpoint in {ckpt}")
        print(f"k8s_pods_test: indexed-job-cpu.yaml: 2 pods trained {steps} steps, checkpoint "
              f"step {steps} on the claim ({time.time() - t0:.1f} s)")
    finally:
        for p in pods:
            if p.proc.poll() is None:
                net.kill_all(p.name)
        net.destroy()


def elastic_job(work, subnet):
    steps = 1500
    vols = setup_volumes(work, TINY + f"steps: {steps}\ncheckpoint_every: 50\n")
    server = load("rdzv-server.yaml")
    rdzv_svc = server["Service"]["metadata"]["name"]
    rdzv_spec = server["Deployment"]["spec"]["template"]["spec"]
    # The user's value for a fast test: the server's timeouts in seconds.
    timeouts = {"--last_call_timeout": "2", "--heartbeat_timeout": "5"}
    rdzv_args = [a if a.split("=")[0] not in timeouts else f"{a.split('=')[0]}={timeouts[a.split('=')[0]]}"
                 for a in rdzv_spec["containers"][0]["args"]]
    check(rdzv_args != rdzv_spec["containers"][0]["args"], "rdzv-server.yaml: timeouts not found in args")
    docs = load("elastic-job-cpu.yaml")
    svc, job = docs["Service"]["metadata"]["name"], docs["Job"]
    spec = job["spec"]["template"]["spec"]
    check(env_of(container(job)).get("PET_RDZV_ENDPOINT", "").startswith(rdzv_svc + ":"),
          "elastic job does not dial the rdzv Service")
    names = [f"{job['metadata']['name']}-{i}" for i in range(3)]
    server_pod = f"{rdzv_svc}-7d4b9c-x2k4q"
    net = Net(f"anvk8s{os.getpid()}", subnet,
              [f"{server_pod}={rdzv_svc}"] + [f"{p}={p}.{svc},{p}.{svc}.default.svc.cluster.local" for p in names])
    pods = []
    try:
        t0 = time.time()
        srv = Pod(work, net, server_pod, rdzv_spec, vols, args=rdzv_args)
        pods.append(srv)
        for i, p in enumerate(names):
            pods.append(Pod(work, net, p, spec, vols, {"JOB_COMPLETION_INDEX": str(i)}))
        workers = pods[1:]
        all_out = lambda: "".join(p.output() for p in workers)
        wait_for(lambda: "world size 3" in all_out() and max_step(all_out()) >= 100, 120,
                 "3 elastic pods to train 100 steps")
        at = max_step(all_out())
        victim = workers[2]
        victim.delete(grace_s=15)
        print(f"k8s_pods_test: elastic: 3 pods trained to step ~{at}; deleted pod {victim.name} "
              f"(exit {victim.proc.returncode}) ({time.time() - t0:.1f} s)")
        for p in workers[:2]:
            rc = p.wait(240)
            check(rc == 0, f"{p.name} exited {rc}:\n{p.output()[-3000:]}")
        out = "".join(p.output() for p in workers[:2])
        # Per survivor: a round of 3, then one of 2 (the minimum) after the deletion.
        for p in workers[:2]:
            o = p.output()
            check(re.search(r"world size 3\b(.|\n)*world size 2\b", o),
                  f"{p.name} did not go on in a round of world size 2 after the deletion")
        resumed = [int(s) for s in re.findall(r"resumed from \S*step_(\d+)", out)]
        check(resumed and resumed[-1] > 0, "the survivors did not resume from a checkpoint")
        check(re.search(rf"\] step +{steps}/{steps} ", out), f"the elastic job did not reach step {steps}")
        ckpt = os.path.join(vols["anvil-checkpoints"], "anvil-elastic")
        check(newest_checkpoint(ckpt) == steps, f"no step-{steps} checkpoint in {ckpt}")
        print(f"k8s_pods_test: elastic: the 2 survivors resumed from step {resumed[-1]} at world size 2 "
              f"and finished {steps} steps ({time.time() - t0:.1f} s)")
    finally:
        for p in pods:
            if p.proc.poll() is None:
                net.kill_all(p.name)
        net.destroy()


def main():
    static_checks()
    print("k8s_pods_test: static checks passed")
    if os.geteuid() != 0:
        print("SKIPPED: the pods need root (network and mount namespaces)")
        return 77
    probe = f"anvk8sprobe{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
        print("SKIPPED: cannot create network namespaces")
        return 77
    subprocess.run(["ip", "netns", "del", probe])
    subprocess.run([os.path.join(HERE, "netns_lib.sh"), "reap", "anvk8s"])
    work = tempfile.mkdtemp(prefix="anvil_k8s.")
    os.chmod(work, 0o755)
    base = 20 + os.getpid() % 100
    ok = False
    try:
        t0 = time.time()
        indexed_job(os.path.join(work, "indexed"), f"10.233.{base}")
        elastic_job(os.path.join(work, "elastic"), f"10.233.{base + 100}")
        print(f"k8s_pods_test: PASSED in {time.time() - t0:.1f} s")
        ok = True
        return 0
    finally:
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", file=sys.stderr)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        sys.exit(main())
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
