//! Per-layer progress lines on a terminal, redrawn in place as docker draws them (pull and push).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A block of lines on stderr, one per layer in layer order; each update redraws the block.
#[derive(Clone, Default)]
pub struct Bars {
    lines: Arc<Mutex<BarState>>,
}

#[derive(Default)]
struct BarState {
    layers: BTreeMap<usize, String>,
    drawn: usize,
}

impl Bars {
    /// Set layer `layer`'s line and redraw.
    pub fn update(&self, layer: usize, line: String) {
        let mut state = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        state.layers.insert(layer, line);
        let mut out = String::new();
        if state.drawn > 0 {
            // Back to the first line of the block, then redraw it all.
            out.push_str(&format!("\x1b[{}A", state.drawn));
        }
        for line in state.layers.values() {
            out.push_str(&format!("\x1b[2K{line}\n"));
        }
        state.drawn = state.layers.len();
        let _ = std::io::stderr().write_all(out.as_bytes());
    }
}

/// The first 12 hex digits of a digest, as docker names layers.
pub fn short(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

/// `[=====>     ] 1.2MB/3.4MB`.
pub fn meter(done: u64, total: u64) -> String {
    let width = 40usize;
    let filled = if total == 0 {
        0
    } else {
        ((done as f64 / total as f64) * width as f64) as usize
    }
    .min(width);
    format!(
        "[{}>{}] {}/{}",
        "=".repeat(filled),
        " ".repeat(width - filled),
        super::pull::human(done),
        super::pull::human(total)
    )
}
