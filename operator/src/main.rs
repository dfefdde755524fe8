fn main() {
    println!("flotilla {}", env!("CARGO_PKG_VERSION"));
}
