//! A model version's evaluation report, drawn on the server: SVG charts and
//! one self-contained HTML page.
//!
//! Why server-side SVG rather than a JavaScript charting library: the report
//! is a document people keep. It must open offline from a downloaded file,
//! print legibly, and be safe to open whatever a dataset's class names
//! contain. So the page carries everything inline (styles, charts, `data:`
//! thumbnails), runs no scripts, and its Content-Security-Policy forbids
//! fetching anything at all. SVG stays sharp at any zoom and on paper, and
//! plotters draws it without system fonts or C libraries: the text is real
//! `<text>` that the reader's browser sets in its own sans-serif.
//!
//! - [`charts`]: one function per chart, each returning a standalone SVG document.
//! - [`html::render`]: the whole page for a [`html::Page`].

pub mod charts;
mod format;
pub mod html;

pub use charts::{confusion_heatmap, curve_chart, distillation_bars, reliability_diagram};
pub use html::{Page, render};

#[cfg(test)]
mod fixture;
