#!/usr/bin/env python3
"""Writes the fixture /proc tree of the exporter's golden test (proc/) and the
executables its exe links point to (bin/). bin/nginx and bin/postgres are tiny
gcc builds (printf 'int main(void){return 0;}' | gcc -Os -s -x c -, with
-Wl,--build-id=sha1 and -Wl,--build-id=none) and are kept as they are.
Run from anywhere: python3 exporter/testdata/gen_fixture.py"""
import os, shutil
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "proc")
shutil.rmtree(root, ignore_errors=True)
os.makedirs(root)
bindir = os.path.join(here, "bin")
for name in os.listdir(bindir):
    if os.path.islink(os.path.join(bindir, name)):
        os.remove(os.path.join(bindir, name))
with open(bindir + "/backup.sh", "w") as f:
    f.write("#!/bin/sh\ntar c /srv | gzip > /backup/srv.tgz\n")
# The files the processes see (every <pid>/root and <pid>/cwd link here): a
# script is named only when its file exists for the process.
rootfs = os.path.join(here, "rootfs")
shutil.rmtree(rootfs, ignore_errors=True)
for f in ["srv/app.py", "usr/local/bin/gunicorn", "opt/shop.jar", "srv/web/server.js", "opt/jobs/backup.sh"]:
    os.makedirs(os.path.dirname(os.path.join(rootfs, f)), exist_ok=True)
    with open(os.path.join(rootfs, f), "w") as fh:
        fh.write("# fixture\n")

def w(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)

def ln(target, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)

w(root + "/stat", "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 100 0 100 1000 0 0 0 0 0 0\nintr 0\nctxt 12345\nbtime 1700000000\nprocesses 1000\nprocs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n")
w(root + "/sys/net/ipv4/ip_local_port_range", "32768\t60999\n")
ln("self/net", root + "/net")  # like the real /proc
HOSTNS = "net:[4026531840]"

def stat(pid, comm, state, ppid, flags, utime, stime, threads, start, rss_pages):
    f = [state, ppid, pid, pid, 0, -1, flags, 100, 0, 5, 0, utime, stime, 0, 0, 20, 0, threads, 0, start,
         123456789, rss_pages, 18446744073709551615, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0,
         0, 0, 0, 0, 0, 0, 0, 0]
    return "%d (%s) %s\n" % (pid, comm, " ".join(str(x) for x in f))

def status(pid, comm, ppid, threads, vol, invol):
    return ("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\nTracerPid:\t0\n"
            "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t64\nVmRSS:\t   4096 kB\nThreads:\t%d\n"
            "voluntary_ctxt_switches:\t%d\nnonvoluntary_ctxt_switches:\t%d\n") % (comm, pid, pid, ppid, threads, vol, invol)

def io(rb, wb, r, wr):
    return "rchar: %d\nwchar: %d\nsyscr: %d\nsyscw: %d\nread_bytes: %d\nwrite_bytes: %d\ncancelled_write_bytes: 0\n" % (rb * 2, wb * 2, r, wr, rb, wb)

def proc(pid, comm, ppid, exe, cmdline, cgroup, utime=10, stime=5, threads=1, start=1000, rss=256,
         vol=10, invol=2, iov=(4096, 8192, 30, 40), wait_ns=2000000, fds=("/dev/null", "/dev/null", "/dev/null"),
         netns=HOSTNS, state="S", flags=0x400100, tasks=None):
    d = "%s/%d" % (root, pid)
    w(d + "/stat", stat(pid, comm, state, ppid, flags, utime, stime, threads, start, rss))
    w(d + "/status", status(pid, comm, ppid, threads, vol, invol))
    if iov is not None:
        w(d + "/io", io(*iov))
    w(d + "/schedstat", "%d %d %d\n" % (utime * 10000000, wait_ns, vol + invol))
    w(d + "/cmdline", "\0".join(cmdline) + ("\0" if cmdline else ""))
    w(d + "/comm", comm + "\n")
    w(d + "/cgroup", cgroup)
    if exe:
        ln(exe, d + "/exe")
    ln("../../rootfs", d + "/root")
    ln("../../rootfs", d + "/cwd")
    os.makedirs(d + "/fd", exist_ok=True)
    for i, t in enumerate(fds):
        ln(t, "%s/fd/%d" % (d, i))
    ln(netns, d + "/ns/net")
    if netns == HOSTNS:
        ln("../net", d + "/net")
    if tasks:
        for tid, (tv, ti, tw) in tasks.items():
            td = "%s/task/%d" % (d, tid)
            w(td + "/stat", stat(tid, comm, "S", ppid, flags, 1, 1, threads, start, rss))
            w(td + "/status", status(tid, comm, ppid, threads, tv, ti))
            w(td + "/schedstat", "%d %d %d\n" % (1000000, tw, tv + ti))
    return d

BIN = "../../bin/"  # exe links relative to <pid>/
ELF = {"python3.11": "nginx", "java": "nginx", "node": "postgres", "containerd-shim-runc-v2": "postgres",
       "redis-server": "nginx", "coredns": "postgres", "bash": "nginx", "tar": "postgres", "gzip": "postgres",
       "broken": "nginx", "truncio": "nginx", "gone": "nginx", "sleep": "postgres"}
for name, target in sorted(ELF.items()):
    os.symlink(target, bindir + "/" + name)
sysd = "0::/init.scope\n"
proc(1, "systemd", 0, "../../missing/systemd", ["/sbin/init"], sysd, utime=300, stime=200)
# Kernel threads: left out.
proc(2, "kthreadd", 0, None, [], "0::/\n", flags=0x208040, iov=None, fds=())
proc(3, "kworker/0:0-events", 2, None, [], "0::/\n", flags=0x4208060, iov=None, fds=())
# nginx under systemd: a master and two workers; listens on tcp and tcp6 80.
ng = "0::/system.slice/nginx.service\n"
proc(100, "nginx", 1, BIN + "nginx", ["nginx: master process /usr/sbin/nginx -g daemon off;"], ng, start=500,
     fds=("/dev/null", "/dev/null", "/dev/null", "socket:[10001]", "socket:[10002]", "socket:[10004]"))
for pid in (101, 102):
    proc(pid, "nginx", 100, BIN + "nginx", ["nginx: worker process"], ng, start=510, utime=50, stime=20,
         fds=("/dev/null", "/dev/null", "/dev/null", "socket:[10001]", "socket:[10002]", "socket:[10003]"))
# postgres as a systemd template instance, with a checkpointer child; listens on 127.0.0.1:5432.
pg = "0::/system.slice/system-postgresql.slice/postgresql@15-main.service\n"
proc(200, "postgres", 1, BIN + "postgres", ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/15/main"], pg,
     start=600, rss=4096, iov=(1048576, 2097152, 300, 400), fds=("/dev/null", "/dev/null", "/dev/null", "socket:[20001]"))
proc(201, "postgres", 200, BIN + "postgres", ["postgres: 15/main: checkpointer "], pg, start=610)
# A Python app in a login session, two threads (context switches summed over task/).
sess = "0::/user.slice/user-0.slice/session-1.scope\n"
proc(300, "python3", 1, BIN + "python3.11", ["python3", "-u", "/srv/app.py", "--token=s3cr3t"], sess, threads=2, start=2000,
     vol=999, invol=999, fds=("/dev/null", "/dev/null", "/dev/null", "socket:[30001]", "socket:[30003]", "socket:[30002]"),
     tasks={300: (5, 1, 1000000), 305: (7, 3, 3000000)})
# gunicorn: master plus a worker whose title was changed by setproctitle.
proc(310, "gunicorn", 1, BIN + "python3.11", ["/usr/bin/python3", "/usr/local/bin/gunicorn", "app:app", "-b", "0.0.0.0:8000"], sess,
     start=2100, fds=("/dev/null", "/dev/null", "/dev/null", "socket:[31001]"))
proc(311, "gunicorn", 310, BIN + "python3.11", ["gunicorn: worker [app:app]"], sess, start=2110,
     fds=("/dev/null", "/dev/null", "/dev/null", "socket:[31001]", "socket:[31002]"))
# A program read from standard input, with secrets after it: no name but the interpreter's.
proc(302, "python3", 1, BIN + "python3.11", ["python3", "-", "--password", "hunter2", "--token", "abc123"], sess, start=2050)
# java -jar and node: interpreters seen through; the password argument must never show.
proc(400, "java", 1, BIN + "java", ["java", "-Xmx1g", "-Dpassword=hunter2", "-jar", "/opt/shop.jar", "--db.password=hunter2"], sess,
     start=3000, rss=100000, utime=1000, stime=300)
proc(401, "node", 1, BIN + "node", ["node", "--max-old-space-size=512", "/srv/web/server.js"], sess, start=3100,
     fds=("/dev/null", "/dev/null", "/dev/null", "socket:[40101]", "socket:[40102]"))
# A Docker container (another network namespace, with its own socket tables).
cid = "4f1d2a3b" * 8
d = proc(500, "redis-server", 480, BIN + "redis-server", ["redis-server *:6379"], "0::/system.slice/docker-%s.scope\n" % cid,
         start=4000, netns="net:[4026532500]", fds=("/dev/null", "/dev/null", "/dev/null", "socket:[50001]"))
# containerd-shim, parent of the container, in the host namespace.
proc(480, "containerd-shim", 1, BIN + "containerd-shim-runc-v2", ["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", cid],
     "0::/system.slice/containerd.service\n", start=3990)
w(d + "/net/tcp", "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
  "   0: 00000000:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 50001 1 0000000000000000 100 0 0 10 0\n")
# A Kubernetes pod's container: DNS on udp 53; an unconnected socket on an ephemeral port is a client, not listed.
pod = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_0000_1111_2222_333344445555.slice/cri-containerd-%s.scope\n" % ("9a8b7c6d" * 8)
d = proc(600, "coredns", 590, BIN + "coredns", ["/coredns", "-conf", "/etc/coredns/Corefile"], pod, start=5000, netns="net:[4026532600]",
         fds=("/dev/null", "/dev/null", "/dev/null", "socket:[60001]", "socket:[60002]"))
w(d + "/net/udp", "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
  "  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 60001 2 0000000000000000 0\n"
  "  101: 00000000:AFC8 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 60002 2 0000000000000000 0\n")
# A backup script and the pipeline it runs: all one service.
proc(700, "backup.sh", 1, BIN + "bash", ["/bin/bash", "/opt/jobs/backup.sh"], sess, start=6000)
proc(701, "tar", 700, BIN + "tar", ["tar", "c", "/srv"], sess, start=6001, iov=(50000000, 0, 5000, 10))
proc(702, "gzip", 700, BIN + "gzip", ["gzip"], sess, start=6001, iov=(0, 20000000, 10, 5000))
# A zombie: left out.
proc(800, "defunct", 1, None, [], sess, state="Z", iov=None, fds=())
# Bad input: a stat that doesn't parse (skipped, counted), a truncated io (kept, counted),
# a process that vanished between stat and status (skipped, not counted).
d = proc(900, "broken", 1, BIN + "broken", ["broken"], sess)
w(d + "/stat", "900 (broken) S 1 900 900 0 -1 banana\n")
d = proc(901, "truncio", 1, BIN + "truncio", ["truncio"], sess)
w(d + "/io", "rchar: 100\nwchar: 2")
d = proc(902, "gone", 1, BIN + "gone", ["gone"], sess)
os.remove(d + "/status"); os.remove(d + "/schedstat"); os.remove(d + "/io")
# An unreadable io file (a directory where the file should be): kept, counted.
d = proc(907, "unreadable", 1, BIN + "truncio", ["unreadable"], sess, start=7500)
os.remove(d + "/io"); os.makedirs(d + "/io")
with open(d + "/io/.keep", "w") as f:
    f.write("")
# A script executable with no ELF notes: identified by its SHA-256.
proc(903, "backup.sh", 1, BIN + "backup.sh", ["/opt/jobs/nightly"], "0::/system.slice/nightly.service\n", start=7000)
# Three sleeps: one service of three processes.
for pid in (904, 905, 906):
    proc(pid, "sleep", 1, BIN + "sleep", ["sleep", "3600"], sess, start=8000 + pid, iov=(0, 0, 1, 0))
# An anonymous in-memory executable: named by comm.
proc(1000, "sandboxd", 1, "/memfd:sealed-0123abcd (deleted)", ["sandboxd", "--key=abc"], sess, start=9000)
# Host socket tables.
w(root + "/self", "")  # replaced below
os.remove(root + "/self")
os.makedirs(root + "/self", exist_ok=True)
w(root + "/self/net/tcp", "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
  "   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10001 1 0000000000000000 100 0 0 10 0\n"
  "   1: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 20001 1 0000000000000000 100 0 0 10 0\n"
  "   2: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31001 1 0000000000000000 100 0 0 10 0\n"
  "   3: 0100007F:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 30001 1 0000000000000000 100 0 0 10 0\n"
  "   4: 0100007F:C350 0100007F:1F41 01 00000000:00000000 00:00000000 00000000     0        0 10003 1 0000000000000000 20 4 30 10 -1\n"
  "   7: 0100007F:1F41 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 30003 1 0000000000000000 20 4 30 10 -1\n"
  "   8: 0100007F:AFC8 0100007F:1F40 01 00000000:00000000 00:00000000 00000000     0        0 40102 1 0000000000000000 20 4 30 10 -1\n"
  "   9: 0100007F:1F40 0100007F:AFC8 01 00000000:00000000 00:00000000 00000000     0        0 31002 1 0000000000000000 20 4 30 10 -1\n"
  "  10: 0500000A:D431 0302010A:1538 01 00000000:00000000 00:00000000 00000000     0        0 30002 1 0000000000000000 20 4 30 10 -1\n"
  "  11: 0500000A:0050 077100CB:C738 01 00000000:00000000 00:00000000 00000000     0        0 10004 1 0000000000000000 20 4 30 10 -1\n"
  "   5: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 40101 1 0000000000000000 100 0 0 10 0\n"
  "   6: 00000000:270F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99999 1 0000000000000000 100 0 0 10 0\n")
w(root + "/self/net/tcp6", "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
  "   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 10002 1 0000000000000000 100 0 0 10 0\n")
w(root + "/self/net/fib_trie", """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.0.0.0/24 2 0 2
        |-- 10.0.0.5
           /32 host LOCAL
        |-- 10.0.0.255
           /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 10.0.0.0/24 2 0 2
        |-- 10.0.0.5
           /32 host LOCAL
""")
w(root + "/self/net/if_inet6", "00000000000000000000000000000001 01 80 10 80       lo\n"
  "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n"
  "fd000000000000000000000000000005 04 40 00 82     eth0\n")
w(root + "/sys/kernel/hostname", "fixture-host\n")
w(root + "/self/net/udp", "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n")

# ---------------------------------------------------------------------------
# pkg/service/testdata/workstation/: a developer's workstation, for the
# service-naming golden test (pkg/service's TestWorkstationServices, expected
# list in services.golden). The tracker begins to look at btime + 10000 s
# (start tick 1000000): processes started later are new. Executables are
# named by their links alone (which need not resolve), except the cached
# build's, which the test builds (a Go program: its build info names it).
ws = os.path.join(here, "..", "..", "pkg", "service", "testdata", "workstation")
shutil.rmtree(os.path.join(ws, "proc"), ignore_errors=True)
shutil.rmtree(os.path.join(ws, "rootfs"), ignore_errors=True)
root = os.path.join(ws, "proc")
os.makedirs(root)
rootfs = os.path.join(ws, "rootfs")
for f in ["home/dev/shop/Makefile", "home/dev/notes.txt", "home/dev/.vscode-server/server.js"]:
    os.makedirs(os.path.dirname(os.path.join(rootfs, f)), exist_ok=True)
    with open(os.path.join(rootfs, f), "w") as fh:
        fh.write("# fixture\n")
w(root + "/stat", "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 100 0 100 1000 0 0 0 0 0 0\nintr 0\nctxt 12345\nbtime 1700000000\nprocesses 1000\nprocs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n")
w(root + "/sys/net/ipv4/ip_local_port_range", "32768\t60999\n")
w(root + "/sys/kernel/hostname", "workstation\n")
ln("self/net", root + "/net")
NEW = 1000000  # start ticks after this are new to the tracker
user = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-%d.scope\n"
session = "0::/user.slice/user-1000.slice/session-2.scope\n"
proc(1, "systemd", 0, "../../missing/systemd", ["/sbin/init"], "0::/init.scope\n", start=1)
proc(2, "kthreadd", 0, None, [], "0::/\n", flags=0x208040, iov=None, fds=())
# A system service (its unit names it) and the desktop in the user's session.
proc(400, "sshd", 1, BIN + "sshd", ["sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"], "0::/system.slice/ssh.service\n", start=400)
proc(900, "gnome-shell", 1, BIN + "gnome-shell", ["/usr/bin/gnome-shell"], session, start=9000, utime=5000)
proc(1000, "gnome-terminal-", 1, BIN + "gnome-terminal-server", ["/usr/libexec/gnome-terminal-server"],
     "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/gnome-terminal-server.service\n", start=10000)
# First tab: an interactive shell, a long tail -f it started an hour ago, and
# a pipeline typed a moment ago (new: it counts for the shell).
proc(1010, "bash", 1000, BIN + "bash", ["bash"], user % 1, start=20000)
proc(1011, "tail", 1010, BIN + "tail", ["tail", "-f", "/var/log/syslog"], user % 1, start=30000)
proc(1012, "grep", 1010, BIN + "grep", ["grep", "-v", "DEBUG"], user % 1, start=NEW + 500)
proc(1013, "wc", 1010, BIN + "wc", ["wc", "-l"], user % 1, start=NEW + 500)
proc(1014, "tee", 1010, BIN + "tee", ["tee", "/home/dev/notes.txt"], user % 1, start=NEW + 500)
# Second tab: `go run ./cmd/shop` for a while — the go command and the
# program it built in its work directory — and a curl against it just now.
proc(1020, "bash", 1000, BIN + "bash", ["bash"], user % 2, start=40000)
proc(1021, "go", 1020, BIN + "go", ["go", "run", "./cmd/shop"], user % 2, start=50000)
proc(1022, "shop", 1021, BIN + "go", ["/tmp/go-build2962711355/b001/exe/shop", "--listen=:8080"], user % 2, start=50500)
os.remove(root + "/1022/exe")
ln("../../../../tmp/go-build2962711355/b001/exe/shop", root + "/1022/exe")
proc(1023, "curl", 1020, BIN + "curl", ["curl", "-s", "localhost:8080/"], user % 2, start=NEW + 600)
# Third tab: make running a compiler just started (new: counts for make).
proc(1030, "bash", 1000, BIN + "bash", ["bash"], user % 3, start=60000)
proc(1031, "make", 1030, BIN + "make", ["make", "-C", "/home/dev/shop", "test"], user % 3, start=NEW - 100)
proc(1032, "cc1", 1031, BIN + "cc1", ["/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "-quiet", "shop.c"], user % 3, start=NEW + 700)
# An editor with its language server, and a program it runs from a memfd.
proc(1040, "nvim", 1000, BIN + "nvim", ["nvim", "main.go"], user % 4, start=70000)
proc(1041, "gopls", 1040, BIN + "gopls", ["gopls"], user % 4, start=70100)
proc(1042, "memfd:sealed-91", 1040, "/memfd:sealed-91 (deleted)", ["formatter-helper", "--stdin"], user % 4, start=70200)
# A cached build's binary, named by its content hash (its Go main package
# names it; the test builds it into bin/ under the hash).
proc(1050, "a3f5c7e9b1d2f4a", 1020, "../../bin/a3f5c7e9b1d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4-d",
     ["/home/dev/.cache/go-build/a3/a3f5c7e9b1d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4-d"], user % 2, start=55000)
# A browser and its helpers: the same executable, one service.
proc(1060, "chrome", 900, BIN + "chrome", ["/opt/google/chrome/chrome"], session, start=80000, utime=3000)
for pid, kind in ((1061, "renderer"), (1062, "gpu-process"), (1063, "utility")):
    proc(pid, "chrome", 1060, BIN + "chrome", ["/opt/google/chrome/chrome", "--type=" + kind], session, start=80100 + pid)
# A language server in Node for the editor, run by node from a script file.
proc(1070, "node", 1000, BIN + "node", ["node", "/home/dev/.vscode-server/server.js", "--stdio"], user % 5, start=90000)
os.makedirs(root + "/self/net", exist_ok=True)
for t in ("tcp", "tcp6", "udp", "udp6"):
    w(root + "/self/net/" + t, "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
