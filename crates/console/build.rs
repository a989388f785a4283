// The console's assets are embedded at compile time: a new build of ui/
// (scripts/run and scripts/test make one) must rebuild this crate.
fn main() {
    println!("cargo:rerun-if-changed=../../ui/dist");
}
