//! `lcd rootfs busybox DIR`: make a root filesystem to run containers from.

use anyhow::Result;

use crate::cli::{RootfsArgs, RootfsKind};

/// `lcd rootfs busybox DIR`.
pub fn rootfs(args: RootfsArgs) -> Result<i32> {
    match args.kind {
        RootfsKind::Busybox { dir, busybox } => {
            libcontainerd::rootfs::busybox(&dir, &busybox)?;
            println!("{}", dir.display());
            Ok(0)
        }
    }
}
