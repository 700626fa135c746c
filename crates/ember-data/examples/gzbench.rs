fn main() {
    let bytes = std::fs::read("datasets/mnist/train-images-idx3-ubyte.gz").unwrap();
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = std::time::Instant::now();
        let a = ember_data::idx::parse_idx(&bytes, "x".as_ref()).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        std::hint::black_box(a);
    }
    let mut hbest = f64::MAX;
    for _ in 0..7 {
        let t = std::time::Instant::now();
        std::hint::black_box(sha2::Digest::finalize(
            <sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes),
        ));
        hbest = hbest.min(t.elapsed().as_secs_f64());
    }
    println!(
        "gunzip+parse best {:.1} ms; sha256 best {:.1} ms",
        best * 1e3,
        hbest * 1e3
    );
}
