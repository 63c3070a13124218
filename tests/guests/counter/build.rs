//! With the `big` feature, writes 2 MiB of incompressible bytes for the
//! component to carry (see `BALLAST` in src/lib.rs).

fn main() {
    if std::env::var_os("CARGO_FEATURE_BIG").is_none() {
        return;
    }
    let mut x: u32 = 0x1234_5678;
    let bytes: Vec<u8> = (0..2 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("ballast.bin");
    std::fs::write(out, bytes).unwrap();
}
