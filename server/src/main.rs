fn main() -> std::process::ExitCode {
    artifact_git::cli::main()
}
