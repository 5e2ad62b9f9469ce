//! Helpers the driver's integration tests share.

/// `text` with the first declared read of `buffer` that the `kind` task reads shortened by
/// `cut` bytes at its end.
pub fn shorten_read(text: &str, kind: &str, buffer: &str, cut: u64) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        let mut l = line.to_string();
        if !done && l.contains("\"task.task\"") && l.contains(&format!("kind = \"{kind}\"")) {
            let pat = format!("#task.range<{buffer}, ");
            if let Some(at) = l.find(&pat) {
                let rest = &l[at + pat.len()..];
                let end = rest.find('>').unwrap();
                let (a, b) = rest[..end].split_once(", ").unwrap();
                let b: u64 = b.parse().unwrap();
                let new = format!("{pat}{a}, {}>", b - cut);
                l = format!("{}{}{}", &l[..at], new, &rest[end + 1..]);
                done = true;
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    assert!(done, "no {kind} task reads {buffer}");
    out
}
