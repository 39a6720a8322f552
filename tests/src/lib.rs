//! The end-to-end harness: a [`sandbox::Sandbox`] runs Atelier's roles against the real
//! NATS, PostgreSQL and S3 servers, isolated per test (own database, subject prefix and
//! bucket, port 0), plus local servers that play the partner's side ([`peer`]).

pub mod browser;
pub mod chaos;
mod invariants;
pub mod otlp;
pub mod peer;
pub mod process;
pub mod roles;
pub mod sandbox;
pub mod verify;

use std::time::Duration;

/// Polls `check` until it yields a value or `timeout` passes; the one way tests wait.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `p` quantile (0–1) of sorted samples, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// A small real PNG (a colour gradient), for inputs.
pub fn gradient_png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encoding a png in memory");
    out.into_inner()
}
