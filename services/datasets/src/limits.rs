/// Caps applied while reading an upload. The defaults suit uploads of a few
/// GiB; plans may lower the byte caps.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Entries in one ZIP (files and folders).
    pub max_zip_entries: usize,
    /// Bytes actually decompressed from one entry (declared sizes lie).
    pub max_entry_bytes: u64,
    /// Bytes actually decompressed from the whole archive.
    pub max_total_bytes: u64,
    /// Decompressed bytes per compressed byte of an entry; DEFLATE tops out
    /// near 1032:1, real images stay far below 100:1.
    pub max_compression_ratio: u64,
    /// Width × height of one image, read from its header before decoding.
    pub max_image_pixels: u64,
    pub max_image_side: u32,
    /// Bytes in one line of CSV/TSV/JSONL.
    pub max_line_bytes: usize,
    /// Nesting of JSON values (serde_json stops at 128 anyway).
    pub max_json_depth: usize,
    /// Bytes of one chat message's content.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_zip_entries: 200_000,
            max_entry_bytes: 64 * 1024 * 1024,
            max_total_bytes: 20 * 1024 * 1024 * 1024,
            max_compression_ratio: 200,
            max_image_pixels: 40_000_000,
            max_image_side: 16_384,
            max_line_bytes: 1024 * 1024,
            max_json_depth: 32,
            max_message_bytes: 256 * 1024,
        }
    }
}
