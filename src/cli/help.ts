export const MAIN_HELP = `nats-autoprof: watches NATS servers and captures pprof profiles when CPU or memory crosses a rule

Usage:
  nats-autoprof <command> [options]

Commands:
  run      run the daemon
  check    validate a configuration file and print the effective configuration

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

Validates the configuration and prints it with every default filled in and secrets redacted.
Exits 0 when it is valid, 2 with every problem (file:line:column, key, message, hint) when it is not.

Options:
  -c, --config FILE   configuration file (default: $NATS_AUTOPROF_CONFIG, else ./nats-autoprof.yaml)
  -h, --help          show this help
  -v, --version       print the version
`;
