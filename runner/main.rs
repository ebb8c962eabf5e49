use std::process::ExitCode;

fn main() -> ExitCode {
    lab_runner::cli::main()
}
