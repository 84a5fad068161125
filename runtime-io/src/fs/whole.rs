//! The whole-file helpers: read a file into memory, write one from it.

use super::{File, PathError};
use std::io;
use std::path::{Path, PathBuf};

/// Reads the whole file at `path`.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    let mut f = File::open(path).await?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)
        .await
        .map_err(|e| PathError::wrap("read", path, e))?;
    Ok(out)
}

/// Reads the whole file at `path` as UTF-8.
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    let bytes = read(path).await?;
    String::from_utf8(bytes).map_err(|e| {
        PathError::wrap(
            "read_to_string",
            path,
            io::Error::new(io::ErrorKind::InvalidData, e.utf8_error()),
        )
    })
}

/// Writes `contents` to the file at `path`, creating it or replacing
/// what it held.
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let path: PathBuf = path.as_ref().into();
    let f = File::create(&path).await?;
    let mut buf = contents.as_ref().to_vec();
    let mut off = 0u64;
    while !buf.is_empty() {
        let (r, mut b) = f.write_at_owned(buf, off).await;
        let n = r.map_err(|e| PathError::wrap("write", &path, e))?;
        if n == 0 {
            return Err(PathError::wrap(
                "write",
                &path,
                io::ErrorKind::WriteZero.into(),
            ));
        }
        b.drain(..n);
        buf = b;
        off += n as u64;
    }
    Ok(())
}
