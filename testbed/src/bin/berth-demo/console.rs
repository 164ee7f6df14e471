//! How the demo talks to the person watching: a `==>` line per step and command output
//! indented under the command as they would type it. Knows nothing about the lab.

/// Announces the next step.
pub fn step(text: &str) {
    println!("\n==> {text}");
}

/// Prints a command's output indented under a `$ command` line.
pub fn show(title: &str, output: &str) {
    println!("\n  {title}");
    for line in output.trim_end().lines() {
        println!("    {line}");
    }
}
