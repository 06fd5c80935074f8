//! Layer compression: which one a media type or the first bytes announce, and the decoder.

use std::io::Read;

use crate::error::{Error, Result};

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From an OCI/Docker layer media type (`tar`, `tar+gzip`, `tar+zstd`, Docker's
    /// `rootfs.diff.tar(.gzip)` and `rootfs.foreign.diff.tar.gzip`, the OCI "nondistributable"
    /// variants). `None` for a type that is not a layer.
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        // Parameters (`; foo=bar`) never change the encoding.
        let mt = mt.split(';').next().unwrap_or(mt).trim();
        let c = match mt {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            _ => return None,
        };
        Some(c)
    }

    /// Sniff from the first bytes: gzip `1f 8b`, zstd `28 b5 2f fd`, anything else plain tar.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Wrap a compressed stream in its decoder. Gzip accepts several members one after the other,
/// as Go's reader (and so Docker) does.
pub fn decompress<'a, R: Read + 'a>(r: R, c: Compression) -> Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(r)
                .map_err(|e| Error::invalid("zstd layer stream", e.to_string()))?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn media_types() {
        let table = [
            (
                "application/vnd.oci.image.layer.v1.tar",
                Some(Compression::None),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                Some(Compression::Zstd),
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                Some(Compression::None),
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                Some(Compression::Zstd),
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar",
                Some(Compression::None),
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip; x=y",
                Some(Compression::Gzip),
            ),
            ("application/vnd.oci.image.manifest.v1+json", None),
            ("application/vnd.oci.image.layer.v1.tar+bzip2", None),
            ("", None),
        ];
        for (mt, want) in table {
            assert_eq!(Compression::from_media_type(mt), want, "{mt}");
        }
    }

    #[test]
    fn sniffing() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"etc/passwd\0"), Compression::None);
        assert_eq!(Compression::sniff(&[0x1f]), Compression::None);
        assert_eq!(Compression::sniff(&[]), Compression::None);
    }

    fn round_trip(compressed: Vec<u8>, want: Compression, plain: &[u8]) {
        assert_eq!(Compression::sniff(&compressed), want);
        let mut out = Vec::new();
        decompress(&compressed[..], want)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, plain);
    }

    #[test]
    fn gzip_round_trip() {
        let plain = b"hello layer ".repeat(1000);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&plain).unwrap();
        round_trip(enc.finish().unwrap(), Compression::Gzip, &plain);
    }

    #[test]
    fn gzip_multi_member() {
        let mut both = Vec::new();
        for part in [b"first ".as_slice(), b"second"] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(part).unwrap();
            both.extend(enc.finish().unwrap());
        }
        round_trip(both, Compression::Gzip, b"first second");
    }

    #[test]
    fn zstd_round_trip() {
        let plain = b"hello layer ".repeat(1000);
        round_trip(
            zstd::encode_all(&plain[..], 1).unwrap(),
            Compression::Zstd,
            &plain,
        );
    }

    #[test]
    fn plain_passes_through() {
        round_trip(b"plain".to_vec(), Compression::None, b"plain");
    }
}
