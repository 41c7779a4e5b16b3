//! [`Temp`]: a fresh temporary directory per test, removed when the test ends.

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A temporary directory removed on drop. It dereferences to its [`Path`], so
/// `temp.join(name)` and `&*temp` work as on a path.
pub struct Temp(pub PathBuf);

impl Temp {
    /// A fresh, empty directory named after the test binary, `name` and this process (a
    /// leftover of an earlier run with the same name is removed first).
    pub fn new(name: &str) -> Temp {
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("mcp-policy-{binary}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Temp(dir)
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes a file in the directory; returns its path as text (for command lines).
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).expect("the file is written");
        path.display().to_string()
    }
}

impl Deref for Temp {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Temp {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::Temp;

    #[test]
    fn files_written_live_as_long_as_the_directory() {
        let dir;
        {
            let t = Temp::new("self-test");
            let file = t.write("a.txt", "text");
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "text");
            assert_eq!(t.join("a.txt"), t.path("a.txt"));
            dir = t.0.clone();
        }
        assert!(!dir.exists());
    }
}
