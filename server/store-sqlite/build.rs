// sqlx::migrate! embeds the migrations: a new or changed one must rebuild the crate.
// `makker_pg` (set by the PostgreSQL store) marks the shared SQL SQLite has no part in.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rustc-check-cfg=cfg(makker_pg)");
}
