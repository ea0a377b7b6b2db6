use std::time::Instant;
fn main() {
    let path = std::path::Path::new(&std::env::args().nth(1).unwrap()).to_owned();
    let text = std::fs::read_to_string(&path).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let _r: krill::raw::RawRecipe = serde_saphyr::from_str(&text).unwrap();
        eprintln!("raw from_str {:?}", t.elapsed());
        let t = Instant::now();
        let opts = serde_saphyr::options! { with_snippet: false, budget: None };
        let _r: krill::raw::RawRecipe = serde_saphyr::from_str_with_options(&text, opts).unwrap();
        eprintln!("raw no budget {:?}", t.elapsed());
        let t = Instant::now();
        let r = krill::Recipe::parse(&text, &path).unwrap();
        eprintln!("parse+validate {:?}", t.elapsed());
        let t = Instant::now();
        let p = krill::Plan::new(r).unwrap();
        eprintln!("plan {:?}", t.elapsed());
        let t = Instant::now();
        let u = krill::render::render_plan(&p);
        eprintln!("render {:?} {}", t.elapsed(), u.len());
    }
}
