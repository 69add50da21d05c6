//! Reading and writing the PKI's PEM files: private keys owner-only (0600),
//! certificates, requests and revocation lists world-readable (0644).

use std::error::Error as StdError;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::ca::{NationalCa, RootCa};
use crate::cert::{CertChain, Certificate};
use crate::crl::RevocationList;
use crate::key::NodeKey;
use crate::request::CertificateRequest;
use crate::verify::TrustedRoot;
use crate::web::{WebCa, WebServerCertificate};

/// Permissions of a private key file: read and write by the owner only.
pub const PRIVATE_KEY_MODE: u32 = 0o600;
/// Permissions of a certificate, request or revocation list file.
pub const PUBLIC_FILE_MODE: u32 = 0o644;

/// A PKI file that could not be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read or written.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// "read" or "write".
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// A private key file that other users can read.
    #[error(
        "the private key file {} can be read by other users (mode {mode:o}); restrict it with `chmod 600`",
        path.display()
    )]
    KeyFileTooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file was read but its content is not what was expected.
    #[error("{} is not usable: {source}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong with the content.
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// Writes a private key PEM document to `path` with owner-only permissions
/// (0600), replacing any file there atomically.
pub fn write_private_key_pem(path: &Path, pem: &str) -> Result<(), FileError> {
    write_atomically(path, pem.as_bytes(), PRIVATE_KEY_MODE)
}

/// Writes a certificate, request or revocation list PEM document to `path`
/// readable by everyone (0644), replacing any file there atomically.
pub fn write_public_pem(path: &Path, pem: &str) -> Result<(), FileError> {
    write_atomically(path, pem.as_bytes(), PUBLIC_FILE_MODE)
}

/// Writes `bytes` to `path` readable by everyone (0644) so that, whatever
/// happens, the file holds either its old content or the new one: a
/// temporary file is written and flushed, renamed over `path`, and the
/// directory flushed. For the state files a CA keeps beside its keys.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_atomically(path, bytes, PUBLIC_FILE_MODE)
}

/// Reads a private key file, refusing one that other users can read.
pub fn read_private_key_pem(path: &Path) -> Result<String, FileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).map_err(|source| FileError::Io {
            path: path.to_owned(),
            action: "read",
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(FileError::KeyFileTooOpen {
                path: path.to_owned(),
                mode,
            });
        }
    }
    read_text(path)
}

/// Reads a public PEM file as text.
pub fn read_public_pem(path: &Path) -> Result<String, FileError> {
    read_text(path)
}

fn read_text(path: &Path) -> Result<String, FileError> {
    fs::read_to_string(path).map_err(|source| FileError::Io {
        path: path.to_owned(),
        action: "read",
        source,
    })
}

fn content<E: StdError + Send + Sync + 'static>(path: &Path) -> impl FnOnce(E) -> FileError {
    let path = path.to_owned();
    move |e| FileError::Content {
        path,
        source: Box::new(e),
    }
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let io_error = |source| FileError::Io {
        path: path.to_owned(),
        action: "write",
        source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        io_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let mut temp_name = file_name.to_owned();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Created with the final mode so a key is never readable by others,
            // not even for a moment.
            options.mode(mode & PRIVATE_KEY_MODE);
        }
        let mut file = options.open(&temp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        // The rename itself is durable only once the directory is.
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(io_error)
}

impl NodeKey {
    /// Writes the key as PKCS#8 PEM to `path`, owner-only (0600).
    pub fn write_pem_file(&self, path: &Path) -> Result<(), FileError> {
        write_private_key_pem(path, &self.to_pkcs8_pem())
    }

    /// Reads a key written by [`NodeKey::write_pem_file`].
    pub fn read_pem_file(path: &Path) -> Result<Self, FileError> {
        NodeKey::from_pkcs8_pem(&read_private_key_pem(path)?).map_err(content(path))
    }
}

impl Certificate {
    /// Writes the certificate as PEM to `path` (0644).
    pub fn write_pem_file(&self, path: &Path) -> Result<(), FileError> {
        write_public_pem(path, &self.to_pem())
    }

    /// Reads a PEM file holding one certificate.
    pub fn read_pem_file(path: &Path) -> Result<Self, FileError> {
        Certificate::from_pem(&read_public_pem(path)?).map_err(content(path))
    }
}

impl CertChain {
    /// Writes the chain as PEM to `path` (0644).
    pub fn write_pem_file(&self, path: &Path) -> Result<(), FileError> {
        write_public_pem(path, &self.to_pem())
    }

    /// Reads a PEM file holding a node certificate and optionally its
    /// national CA certificate.
    pub fn read_pem_file(path: &Path) -> Result<Self, FileError> {
        CertChain::from_pem(&read_public_pem(path)?).map_err(content(path))
    }
}

impl TrustedRoot {
    /// Pins the root certificate in the PEM file at `path`.
    pub fn read_pem_file(path: &Path) -> Result<Self, FileError> {
        TrustedRoot::from_pem(&read_public_pem(path)?).map_err(content(path))
    }
}

impl RevocationList {
    /// Writes the list as PEM to `path` (0644).
    pub fn write_pem_file(&self, path: &Path) -> Result<(), FileError> {
        write_public_pem(path, &self.to_pem())
    }

    /// Reads a PEM file holding one revocation list.
    pub fn read_pem_file(path: &Path) -> Result<Self, FileError> {
        RevocationList::from_pem(&read_public_pem(path)?).map_err(content(path))
    }
}

impl CertificateRequest {
    /// Writes the request as PEM to `path` (0644).
    pub fn write_pem_file(&self, path: &Path) -> Result<(), FileError> {
        write_public_pem(path, &self.to_pem())
    }

    /// Reads a PEM file holding one certificate request.
    pub fn read_pem_file(path: &Path) -> Result<Self, FileError> {
        CertificateRequest::from_pem(&read_public_pem(path)?).map_err(content(path))
    }
}

impl RootCa {
    /// Writes the root certificate (0644) and its key (0600).
    pub fn write_pem_files(&self, certificate: &Path, key: &Path) -> Result<(), FileError> {
        write_private_key_pem(key, &self.key_pem())?;
        self.certificate().write_pem_file(certificate)
    }

    /// Loads a root from its certificate and key files.
    pub fn read_pem_files(certificate: &Path, key: &Path) -> Result<Self, FileError> {
        let key_pem = read_private_key_pem(key)?;
        let cert_pem = read_public_pem(certificate)?;
        RootCa::from_pem(&cert_pem, &key_pem).map_err(content(certificate))
    }
}

impl NationalCa {
    /// Writes the national CA certificate (0644) and its key (0600).
    pub fn write_pem_files(&self, certificate: &Path, key: &Path) -> Result<(), FileError> {
        write_private_key_pem(key, &self.key_pem())?;
        self.certificate().write_pem_file(certificate)
    }

    /// Loads a national CA from its certificate and key files.
    pub fn read_pem_files(certificate: &Path, key: &Path) -> Result<Self, FileError> {
        let key_pem = read_private_key_pem(key)?;
        let cert_pem = read_public_pem(certificate)?;
        NationalCa::from_pem(&cert_pem, &key_pem).map_err(content(certificate))
    }
}

impl WebCa {
    /// Writes the web CA certificate (0644) and its key (0600).
    pub fn write_pem_files(&self, certificate: &Path, key: &Path) -> Result<(), FileError> {
        write_private_key_pem(key, &self.key_pem())?;
        self.certificate().write_pem_file(certificate)
    }

    /// Loads a web CA from its certificate and key files.
    pub fn read_pem_files(certificate: &Path, key: &Path) -> Result<Self, FileError> {
        let key_pem = read_private_key_pem(key)?;
        let cert_pem = read_public_pem(certificate)?;
        WebCa::from_pem(&cert_pem, &key_pem).map_err(content(certificate))
    }
}

impl WebServerCertificate {
    /// Writes the chain the node serves (0644) and the key (0600), as
    /// `[web] tls` in `imi-node.toml` names them.
    pub fn write_pem_files(&self, chain: &Path, key: &Path) -> Result<(), FileError> {
        write_private_key_pem(key, self.key_pem())?;
        write_public_pem(chain, &self.chain_pem())
    }
}
