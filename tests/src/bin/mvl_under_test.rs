//! The `mvl` command line built inside the tests package, so that tests which must run it as a
//! separate process (and kill it) find it through `CARGO_BIN_EXE_mvl-under-test`.

fn main() -> std::process::ExitCode {
    engine::cli::run(std::env::args_os(), &mut engine::cli::Output::stdout())
}
