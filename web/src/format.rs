//! Small formatting helpers shared by the page handlers: sizes, times, short ids.

/// A byte count as people read it (`1.4 MiB`).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// The first seven digits of an object id, as git abbreviates it.
pub fn short_id(id: &str) -> String {
    id.chars().take(7).collect()
}

/// The first line of a commit message.
pub fn summary(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_owned()
}

/// An RFC 3339 time shortened to its date and minutes (`2026-12-07 14:03`).
pub fn date(rfc3339: &str) -> String {
    let trimmed: String = rfc3339.chars().take(16).collect();
    trimmed.replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::size(12), "12 B");
        assert_eq!(super::size(1536), "1.5 KiB");
        assert_eq!(super::size(3 << 30), "3.0 GiB");
        assert_eq!(super::short_id("0123456789abcdef"), "0123456");
        assert_eq!(super::summary("fix: x\n\nbody"), "fix: x");
        assert_eq!(super::date("2026-12-07T14:03:22Z"), "2026-12-07 14:03");
    }
}
