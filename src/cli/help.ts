export const MAIN_HELP = `nats-autoprof: watches NATS servers and captures pprof profiles when CPU or memory crosses a rule

Usage:
  nats-autoprof <command> [options]

Commands:
  run      run the daemon
  check    validate a configuration file and print the effective configuration
  capture  take profiles now from the servers you name (through the system account), and exit
  demo     start a local nats-server, load it in waves, and watch the daemon capture profiles

Options:
  -h, --help       show help (also after a command: nats-autoprof run --help)
  -v, --version    print the version

Exit codes: 0 success, 1 runtime failure, 2 bad configuration or usage.
`;

export const RUN_HELP = `Usage: nats-autoprof run [--config FILE]

Runs the daemon: polls each server's /varz, evaluates the triggers, captures profiles into the storage
directory, and serves /metrics, /healthz and /readyz on http.listen.

Options:
  -c, --config FILE   configuration file (default: $NATS_AUTOPROF_CONFIG, else ./nats-autoprof.yaml)
  -h, --help          show this help
  -v, --version       print the version

Signals: SIGTERM/SIGINT stop (waiting up to shutdown_timeout for captures in progress);
SIGHUP reloads the configuration (an invalid file is reported and the running configuration kept).
`;

export const CHECK_HELP = `Usage: nats-autoprof check [--config FILE]

Validates the configuration and prints it with every default filled in and secrets redacted (a secret
read from a file is shown as its <key>_file). Warns on stderr about a configuration that watches nothing.
Exits 0 when it is valid, 2 with every problem (file:line:column, key, message, hint) when it is not.

Options:
  -c, --config FILE   configuration file (default: $NATS_AUTOPROF_CONFIG, else ./nats-autoprof.yaml)
  -h, --help          show this help
  -v, --version       print the version
`;

export const CAPTURE_HELP = `Usage: nats-autoprof capture <profile>... (--server URL [--user U --password P | --creds FILE] | --config FILE)
                             [--name N]... [--cluster C]... [--tags T]... [--timeout 5s] [--level N] [--dir DIR]

Takes profiles now, like "nats server request profile", through the system account: asks every server
($SYS.REQ.SERVER.PING.STATSZ), keeps those the selectors match (exactly, on this side: --name n1 never
matches n10), then asks each of them ($SYS.REQ.SERVER.<server_id>.PROFILEZ). Each server's profiles are
saved as one incident, in the daemon's layout: DIR/<server>/<time>-manual/{incident.json, statsz.json,
<profile>.pb.gz}. One line per server and profile is printed: the file and its top function, or FAILED
and why.

Profiles: cpu allocs heap goroutine block mutex threadcreate allocs_delta (several may be given).
allocs_delta is what was allocated during --timeout: two allocs snapshots that far apart, subtracted
(allocs counts everything since the server started).

Connection (exactly one of --server and --config):
  -s, --server URL     NATS URL of any server (repeat or separate with commas for more)
      --user USER      a user of the system account, with --password (or $NATS_PASSWORD)
      --password PW    its password; prefer $NATS_PASSWORD, which no process list shows
      --creds FILE     a .creds file (JWT + nkey seed) instead of --user/--password
  -c, --config FILE    use the system_account section of a nats-autoprof configuration file
                       (its select: is not applied; only the selectors below are)

Selection (each repeatable or comma-separated; a list matches any of its values; lists combine with AND):
      --name N         server name, exact or a glob with * and ?
      --cluster C      cluster name, exact
      --tags T         server tag; a server must carry every tag given (case-insensitive)

Capture:
  -t, --timeout D      for cpu: the profile's length, 1s to 15s (it is waited for plus 2s);
                       for allocs_delta: its window, at least 1s;
                       for the other profiles: how long to wait for each (default 5s)
      --level N        pprof debug level: 0 gzip protobuf for go tool pprof (default);
                       1 or 2 text, saved as <profile>.txt (cpu is always protobuf)
  -d, --dir DIR        where incidents are written (default ./profiles)
  -h, --help           show this help
  -v, --version        print the version

Exit codes: 0 every selected server gave every profile; 1 a profile failed, no server matched, or the
connection failed (wrong credentials, not a system-account user); 2 bad usage or configuration.
`;

export const DEMO_HELP = `Usage: nats-autoprof demo [--duration D] [--dir DIR] [--via auto|system_account|prof_port]

Shows the daemon at work on this machine, with nothing to install or configure (npm run demo):
  1. gets a nats-server (scripts/get-nats-server.sh: the one on PATH, or Debian's package fetched into
     .cache/ the first time) and starts it on free loopback ports, with monitoring, prof_port, a
     system-account user and an application account;
  2. runs the daemon, node dist/main.js run --config config/demo.yaml, with that file's DEMO_* variables
     set to the ports, a new password and the incident directory;
  3. loads the server in waves (10s busy, 10s quiet): a publish flood, large messages, many subjects;
     the rules demo-high-cpu and demo-memory fire within about 20s;
  4. prints what happens in plain lines (rules pending and firing, captures, incidents and their top
     functions), translated from the daemon's JSON log and its /api/v1/triggers;
  5. on Ctrl-C or after --duration, stops everything it started and lists the incidents with the
     go tool pprof commands to open them.

Options:
      --duration D   stop after D (e.g. 60s, 2m), counted from the first load wave; default: run until
                     Ctrl-C (SIGINT) or SIGTERM
  -d, --dir DIR      where incidents are written (default ./demo-profiles, in the current directory)
      --via V        how profiles are captured: auto (the system account, prof_port as fallback; the
                     default), system_account, or prof_port
  -h, --help         show this help
  -v, --version      print the version

Exit codes: 0 at least one incident with a profile was written; 1 none was (the reason is printed) or a
process it started failed; 2 bad usage or configuration.
`;
