//! `portrange`: the IP_LOCAL_PORT_RANGE conformance suite's command line.

fn main() -> std::process::ExitCode {
    portrange::main()
}
