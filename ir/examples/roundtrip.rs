//! Parses, verifies and prints a file: `cargo run -p mkc-ir --example roundtrip FILE`.
fn main() {
    let path = std::env::args().nth(1).expect("usage: roundtrip FILE");
    let text = std::fs::read_to_string(&path).expect("read");
    let reg = mkc_ir::Registry::with_all_dialects();
    let mut sm = mkc_ir::SourceMap::new();
    let opts = mkc_ir::verify::VerifyOptions {
        allow_unregistered: true,
    };
    match mkc_ir::parse_and_verify(&mut sm, &path, &text, &reg, opts) {
        Ok(b) => print!("{}", mkc_ir::printer::print(&b)),
        Err(d) => eprint!("{}", mkc_ir::diag::render_all(&d, &sm)),
    }
}
