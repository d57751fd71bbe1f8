//! Request paths: every path either names a repository and an endpoint whose names are valid,
//! or nothing.
#![no_main]

use artifact_git::storage::valid_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((id, _endpoint)) = artifact_git::http::route(path) {
        assert!(valid_name(&id.workspace), "workspace {:?}", id.workspace);
        assert!(valid_name(&id.alias), "alias {:?}", id.alias);
    }
    let _ = path.parse::<artifact_git::storage::RepoId>();
    let _ = path.parse::<artifact_git::proxy::Cidr>();
});
