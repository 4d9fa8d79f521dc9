//! The demo README starts with must keep working: run it and check that each step it narrates
//! happened (it exits non-zero on any failed step, and every step has a deadline). Only alpha's
//! lines are checked: the other nodes' lines are relayed by other threads, in no fixed order with
//! alpha's (that each room member heard a line is in alpha's "heard on [...]", from their answers).

use std::process::Command;

#[test]
fn demo_runs_every_step() {
    let output = Command::new(env!("CARGO_BIN_EXE_demo")).env("RUST_LOG", "error").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for step in [
        "(gamma joined through beta)",
        "\"hello\"}  ->  {:echo,",
        "\"via gamma\"}",
        "{:square, 49}",
        "\"run_shell_command\", []) refused",
        "{:DOWN, #Ref<",
        "global whereis_name(:counter) = <beta@127.0.0.1.",
        "global send(:counter, {:next, self()})  ->  {:number, 1}",
        "reached 3 members; heard on [\"alpha@127.0.0.1\", \"beta@127.0.0.1\", \"gamma@127.0.0.1\"]",
        "{:nodedown, :\"gamma@127.0.0.1\"}",
        ":leave, :lobby, [<gamma@127.0.0.1.",
        "broadcast(:lobby, \"still chatting\") reached 2 members; heard on [\"alpha@127.0.0.1\", \"beta@127.0.0.1\"]",
        "[alpha] done",
        "beta@127.0.0.1",
    ] {
        assert!(stdout.contains(step), "demo output lacks {step:?}:\n{stdout}");
    }
}
