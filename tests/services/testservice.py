#!/usr/bin/python3
"""A service for Sentinel's supervision tests and benchmark, told what to do over HTTP.

    testservice.py [--port N] [--port-file F] [--pid-file F] [--fail-on-start] [--start-delay S]

GET /health answers 200 "ok" (until /hang); POST /crash exits 1, /exit0 exits 0, /hang stops answering
(the process stays alive). The port it listens on (0 = any free one) is written to --port-file once it
accepts connections. Every start appends "started pid N" to stdout.
"""
import argparse, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = argparse.ArgumentParser()
args.add_argument("--port", type=int, default=0)
args.add_argument("--port-file")
args.add_argument("--pid-file")
args.add_argument("--fail-on-start", action="store_true")
args.add_argument("--start-delay", type=float, default=0)
a = args.parse_args()

print(f"started pid {os.getpid()} argv {sys.argv[1:]}", flush=True)
if a.pid_file:
    with open(a.pid_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(a.pid_file + ".tmp", a.pid_file)
if a.fail_on_start:
    print("boom: failing on start as told", file=sys.stderr, flush=True)
    sys.exit(2)
if a.start_delay:
    time.sleep(a.start_delay)
hung = threading.Event()

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def reply(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if hung.is_set():
            threading.Event().wait()
        self.reply(200, "ok")

    def do_POST(self):
        if self.path == "/crash":
            print("crashing as told", flush=True)
            os._exit(1)
        if self.path == "/exit0":
            print("exiting 0 as told", flush=True)
            os._exit(0)
        if self.path == "/hang":
            hung.set()
            self.reply(200, "hanging")
            return
        self.reply(404, "no such command")

server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
server.daemon_threads = True
if a.port_file:
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, a.port_file)
server.serve_forever()
