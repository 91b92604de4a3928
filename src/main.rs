//! The `smbdensity` executable: see `cli` for what it does.

fn main() {
    std::process::exit(smbdensity::cli::run(std::env::args_os()));
}
