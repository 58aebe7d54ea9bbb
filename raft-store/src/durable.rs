//! Making bytes durable: fsync helpers, atomic file replacement, and the
//! sealed file frame (magic + body + CRC-32) used by the snapshot and guard
//! files so a torn or corrupted file is detected instead of misread.

use std::fs::File;
use std::path::Path;

use crate::error::StoreError;

/// Fsyncs a directory so that a rename or a new file in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("cannot fsync directory", dir, e))
}

/// Replaces `path` with `bytes` so that after a crash the file is either
/// the old or the new content, and the new content is durable on return;
/// the file is private (0600, see [`crate::private::write_file`]).
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    crate::private::write_file(path, bytes).map_err(|e| StoreError::io("cannot write", path, e))
}

/// Frames `body` as `magic | body | crc32(magic | body)`.
pub(crate) fn seal(magic: &[u8; 8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(magic);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a frame made by [`seal`] and returns its body, or says what is wrong.
pub(crate) fn unseal<'a>(magic: &[u8; 8], bytes: &'a [u8]) -> Result<&'a [u8], String> {
    if bytes.len() < 12 {
        return Err(format!("truncated: {} bytes", bytes.len()));
    }
    if &bytes[..8] != magic {
        return Err("not a file of this kind (bad magic)".to_string());
    }
    let (framed, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let actual = crc32fast::hash(framed);
    if stored != actual {
        return Err(format!(
            "checksum mismatch (stored {stored:08x}, computed {actual:08x}): truncated or damaged"
        ));
    }
    Ok(&framed[8..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_roundtrip_and_damage_detected() {
        let m = b"TESTMAG1";
        let s = seal(m, b"hello");
        assert_eq!(unseal(m, &s).unwrap(), b"hello");
        let mut bad = s.clone();
        bad[9] ^= 1;
        assert!(unseal(m, &bad).unwrap_err().contains("checksum"));
        assert!(unseal(m, &s[..s.len() - 1]).is_err());
        assert!(unseal(b"OTHERMAG", &s).unwrap_err().contains("magic"));
        assert!(unseal(m, &s[..5]).unwrap_err().contains("truncated"));
    }
}
