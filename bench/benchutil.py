"""Small helpers shared by the Python benchmark scripts in bench/ (imported from the script's
own directory)."""
import os
import re
import socket
import subprocess
import time


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, deadline=30.0):
    """True once something accepts on 127.0.0.1:port, False after deadline seconds."""
    t = time.time() + deadline
    while time.time() < t:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def cpu_s(pid):
    """utime + stime of a process and all its threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def wrk_cpu(pid, url, conns, dur):
    """One wrk run (1 thread, conns connections, dur seconds) against url: the CPU µs process pid
    spent per completed request, and req/s."""
    c0 = cpu_s(pid)
    w = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % dur, url],
                       capture_output=True, text=True)
    c1 = cpu_s(pid)
    m = re.search(r"(\d+) requests in", w.stdout)
    n = int(m.group(1)) if m else 0
    return (c1 - c0) * 1e6 / n if n else float("nan"), n / dur


def static_nginx(nginx, tmp, www, port, workers=1):
    """Starts nginx serving the files of www on 127.0.0.1:port (config and pid file in tmp,
    keep-alive without a request limit); returns the process. The caller waits for the port."""
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write("worker_processes %d; daemon off; pid %s/nginx.pid; error_log %s/nginx.err;\n"
                "events { worker_connections 1024; }\n"
                "http { access_log off; keepalive_requests 1000000;\n"
                "  server { listen 127.0.0.1:%d; root %s; location / { default_type text/html; }"
                " } }\n" % (workers, tmp, tmp, port, www))
    return subprocess.Popen([nginx, "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
