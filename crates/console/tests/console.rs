//! The console's files are found with their types, whether or not `ui/` was
//! built before this crate.

#[test]
fn the_index_is_the_built_page_or_says_how_to_build_it() {
    let index = console::index();
    assert_eq!(index.content_type, "text/html; charset=utf-8");
    let text = String::from_utf8(index.body.into_owned()).unwrap();
    if console::is_built() {
        assert!(text.contains("/console/assets/"), "the built index loads its files: {text}");
        let script = text.split("src=\"/console/").nth(1).and_then(|rest| rest.split('"').next()).expect("the index names its script");
        let file = console::file(script).expect("the index's script is embedded");
        assert_eq!(file.content_type, "text/javascript; charset=utf-8");
        assert!(file.immutable, "hashed names are cached for good");
    } else {
        assert!(text.contains("npm ci") && text.contains("ui/"), "says how to build the console: {text}");
    }
}

#[test]
fn unknown_files_are_not_found_and_console_paths_are_told_apart() {
    assert!(console::file("assets/nothing-here.js").is_none());
    assert!(console::file("../Cargo.toml").is_none());
    assert!(console::is_console_path("/") && console::is_console_path("/console") && console::is_console_path("/console/assets/x.js"));
    assert!(!console::is_console_path("/v1/instances") && !console::is_console_path("/consoles"));
}
