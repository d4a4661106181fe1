//! Numbers for people: byte sizes in binary units (`262.8 KiB`) and counts with the right
//! plural (`1 canary`, `2 canaries`). Pure; part of the core with `times`.

/// `512 B`, `262.8 KiB`, `1.5 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `n` and the word in the form that goes with it: `1 canary`, `3 canaries`.
pub fn count(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(269_145), "262.8 KiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
        assert!(size(u64::MAX).ends_with("PiB"));
        assert_eq!(count(1, "canary", "canaries"), "1 canary");
        assert_eq!(count(0, "canary", "canaries"), "0 canaries");
    }
}
