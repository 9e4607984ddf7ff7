//! The helper binary the sample's tests run: prints the greeting for its
//! argument and the directory it runs in.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    println!("{}", runner_sample::greeting(&name));
    match std::env::current_dir() {
        Ok(dir) => println!("{}", dir.display()),
        Err(e) => {
            eprintln!("runner-sample-helper: no working directory: {e}");
            std::process::exit(1);
        }
    }
}
