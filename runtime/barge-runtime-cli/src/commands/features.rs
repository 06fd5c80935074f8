use barge_runtime::Result;

pub fn run() -> Result<i32> {
    super::print_json(&barge_runtime::features::document())?;
    Ok(0)
}
