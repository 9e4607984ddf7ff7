//! The ELF interpreter and shared libraries a dynamically linked program needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::{Endianness, read::StringTable};

use super::Error;

/// Where Debian keeps shared libraries, in the dynamic loader's order.
const SYSTEM_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// What the dynamic section of one ELF file asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Needs {
    interpreter: Option<String>,
    needed: Vec<String>,
    search: Vec<String>,
}

/// All files `executable` needs at run time, by absolute path in the guest
/// (the same as on the host), transitively. Empty for a static executable.
pub(super) fn runtime_files(executable: &Path) -> Result<BTreeMap<String, PathBuf>, Error> {
    let mut files = BTreeMap::new();
    let mut queue = vec![executable.to_path_buf()];
    while let Some(object) = queue.pop() {
        let needs = read_needs(&object)?;
        if let Some(interpreter) = needs.interpreter {
            files
                .entry(interpreter.clone())
                .or_insert_with(|| PathBuf::from(interpreter));
        }
        let origin = object.parent().unwrap_or(Path::new("/"));
        let dirs: Vec<String> = needs
            .search
            .iter()
            .map(|dir| dir.replace("$ORIGIN", &origin.to_string_lossy()))
            .chain(SYSTEM_DIRS.iter().map(|dir| dir.to_string()))
            .collect();
        for library in needs.needed {
            let found = dirs
                .iter()
                .map(|dir| Path::new(dir).join(&library))
                .find(|candidate| candidate.is_file())
                .ok_or_else(|| Error::LibraryMissing {
                    library: library.clone(),
                    needed_by: object.clone(),
                    searched: dirs.join(":"),
                })?;
            let key = found.to_string_lossy().into_owned();
            if let std::collections::btree_map::Entry::Vacant(slot) = files.entry(key) {
                slot.insert(found.clone());
                queue.push(found);
            }
        }
    }
    Ok(files)
}

fn read_needs(path: &Path) -> Result<Needs, Error> {
    let data = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_needs(&data).map_err(|reason| Error::NotElf {
        path: path.to_path_buf(),
        reason,
    })
}

fn parse_needs(data: &[u8]) -> Result<Needs, String> {
    let header = elf::FileHeader64::<Endianness>::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    if header.e_machine(endian) != elf::EM_X86_64 {
        return Err(format!(
            "machine type {} is not x86-64",
            header.e_machine(endian)
        ));
    }
    let mut needs = Needs::default();
    for segment in header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?
    {
        if let Some(interpreter) = segment
            .interpreter(endian, data)
            .map_err(|e| e.to_string())?
        {
            needs.interpreter = Some(String::from_utf8_lossy(interpreter).into_owned());
        }
    }
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let Some((entries, link)) = sections.dynamic(endian, data).map_err(|e| e.to_string())? else {
        return Ok(needs);
    };
    let strings = sections
        .strings(endian, data, link)
        .map_err(|e| e.to_string())?;
    for entry in entries {
        let text = |strings: StringTable<'_>| -> Result<String, String> {
            let bytes = entry.string(endian, strings).map_err(|e| e.to_string())?;
            Ok(String::from_utf8_lossy(bytes).into_owned())
        };
        match entry.tag32(endian) {
            Some(elf::DT_NEEDED) => needs.needed.push(text(strings)?),
            Some(elf::DT_RUNPATH | elf::DT_RPATH) => {
                needs
                    .search
                    .extend(text(strings)?.split(':').map(str::to_string));
            }
            _ => {}
        }
    }
    Ok(needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_test_binary_needs_libc_and_the_loader() {
        // This test binary itself is a real dynamically linked program.
        let exe = std::env::current_exe().unwrap();
        let files = runtime_files(&exe).unwrap();
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert!(
            names.iter().any(|name| name.ends_with("/libc.so.6")),
            "{names:?}"
        );
        assert!(
            names
                .iter()
                .any(|name| name.contains("ld-linux-x86-64.so.2")),
            "{names:?}"
        );
    }

    #[test]
    fn non_elf_is_rejected_with_a_reason() {
        let err = parse_needs(b"#!/bin/sh\necho hi\n").unwrap_err();
        assert!(!err.is_empty());
    }
}
