// sqlx::migrate! embeds the migrations: a new or changed one must rebuild the crate.
// `makker_pg` marks the PostgreSQL-only parts of the SQL both stores share.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rustc-check-cfg=cfg(makker_pg)");
    println!("cargo:rustc-cfg=makker_pg");
}
