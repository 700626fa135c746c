use ember_data::{Dataset, Mnist};
fn main() {
    let train = Mnist::train("datasets/mnist").unwrap().normalize(0.5, 0.5);
    let t = std::time::Instant::now();
    let mut r = 0usize;
    while t.elapsed().as_secs_f64() < 4.0 {
        let idx: Vec<usize> = (0..64).map(|i| (i * 7919 + r * 64) % 60000).collect();
        std::hint::black_box(train.get_batch(&idx));
        r += 1;
    }
    println!("{:.1} us/batch", 4.0 / r as f64 * 1e6);
}
