//! hostcalls (Rust) - a test actor that drives every host wrapper of the Rust
//! SDK (tests/test_e2e_sdk.c). A request is one command; the answer is text:
//! "ok VALUE" or "err NAME" (the host error's name).
//!   log TEXT | self | now | sleep MS | random N | uuid
//!   store SID DATA | get SID HASH | label SID LABEL HASH | getlabel SID LABEL
//!   send ID MSG | request ID MSG
//!   spawn MANIFEST_JSON | children | childstate ID | stop ID | restart ID
//!   alloc N (theater_alloc: "ok some", or "ok null" when memory is full)
//!   chunk TEXT (send-chunk of this request: "ok 1" streamed, "ok 0" not)
//!   respond ID TEXT | fail ID TEXT | timer NAME DELAY PERIOD | cancel NAME
//!   open ID MSG ("ok CHANNEL ACCEPT-MESSAGE" or "err NAME REASON") |
//!   chsend CHANNEL MSG | chclose CHANNEL
//! Timer ticks (handle-timer) count in the state: {"ticks": n}. A channel
//! opening is accepted with "welcome", unless its message is "reject".
use theater::host::{message, random, runtime, store, supervisor, timing, Error};
use theater::{Actor, Reply};

struct Hostcalls;

fn answer<T, F: FnOnce(T) -> String>(r: Result<T, Error>, show: F) -> String {
    match r {
        Ok(v) => format!("ok {}", show(v)),
        Err(e) => format!("err {}", e),
    }
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

fn run(cmd: &str) -> Result<String, String> {
    let mut words = cmd.splitn(2, ' ');
    let op = words.next().unwrap_or("");
    let rest = words.next().unwrap_or("");
    let args: Vec<&str> = rest.split(' ').collect();
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    let tail = |i: usize| args.get(i..).map(|a| a.join(" ")).unwrap_or_default();
    Ok(match op {
        "log" => {
            runtime::log(rest);
            "ok".into()
        }
        "self" => answer(runtime::self_id(), |s| s),
        "now" => format!("ok {}", timing::now()),
        "sleep" => answer(timing::sleep(arg(0).parse().unwrap_or(0)), |_| String::new()),
        "random" => answer(random::bytes(arg(0).parse().unwrap_or(0)), |b| b.len().to_string()),
        "uuid" => answer(random::uuid(), |s| s),
        "store" => answer(store::store(arg(0), tail(1).as_bytes()), |h| h),
        "get" => answer(store::get(arg(0), arg(1)), text),
        "label" => answer(store::label(arg(0), arg(1), arg(2)), |_| String::new()),
        "getlabel" => answer(store::get_by_label(arg(0), arg(1)), text),
        "send" => answer(message::send(arg(0), tail(1).as_bytes()), |_| String::new()),
        "request" => answer(message::request(arg(0), tail(1).as_bytes(), 30000), text),
        "spawn" => match supervisor::spawn(rest, None) {
            Ok(id) => format!("ok {}", id),
            Err((e, _)) => format!("err {}", e),
        },
        "children" => answer(supervisor::list_children(), |ids| ids.join(",")),
        "childstate" => answer(supervisor::get_child_state(arg(0)), text),
        "stop" => answer(supervisor::stop_child(arg(0)), |_| String::new()),
        "restart" => answer(supervisor::restart_child(arg(0)), |_| String::new()),
        // theater_alloc as the host calls it: 0 when memory cannot grow
        "chunk" => answer(message::send_chunk(0, rest.as_bytes()), |b| (b as i32).to_string()),
        "respond" => answer(message::respond_to_request(arg(0).parse().unwrap_or(0),
                                                        tail(1).as_bytes()), |_| String::new()),
        "fail" => answer(message::fail_request(arg(0).parse().unwrap_or(0), &tail(1)),
                         |_| String::new()),
        "timer" => answer(timing::set_timer(arg(0), arg(1).parse().unwrap_or(0),
                                            arg(2).parse().unwrap_or(0)), |_| String::new()),
        "cancel" => answer(timing::cancel_timer(arg(0)), |_| String::new()),
        "open" => match message::open_channel(arg(0), tail(1).as_bytes()) {
            Ok((ch, msg)) => format!("ok {} {}", ch, text(msg)),
            Err((e, msg)) => format!("err {} {}", e, text(msg)),
        },
        "chsend" => answer(message::send_on_channel(arg(0).parse().unwrap_or(0),
                                                    tail(1).as_bytes()), |_| String::new()),
        "chclose" => answer(message::close_channel(arg(0).parse().unwrap_or(0)),
                            |_| String::new()),
        "alloc" => match theater::abi::alloc(arg(0).parse().unwrap_or(0)) {
            0 => "ok null".into(),
            _ => "ok some".into(),
        },
        _ => return Err(format!("unknown command '{}'", op)),
    })
}

impl Actor for Hostcalls {
    fn handle_request(state: &[u8], req: &[u8]) -> Result<Reply, String> {
        let cmd = core::str::from_utf8(req).map_err(|_| "the command is not UTF-8")?;
        let out = run(cmd.trim_end())?;
        Ok(Reply::new(state).with_output(out.trim_end()))
    }

    fn handle_timer(state: &[u8], _tick: &[u8]) -> Result<Reply, String> {
        let n = core::str::from_utf8(state).ok()
            .and_then(|s| s.strip_prefix("{\"ticks\":"))
            .and_then(|s| s.strip_suffix('}'))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(Reply::new(format!("{{\"ticks\":{}}}", n + 1)))
    }

    fn handle_channel_open(state: &[u8], env: &[u8]) -> Result<Reply, String> {
        if String::from_utf8_lossy(env).contains("\"data\":\"reject\"") {
            return Err("not today".into());
        }
        Ok(Reply::new(state).with_output("welcome"))
    }
}

theater::actor!(Hostcalls, timers, channels);
