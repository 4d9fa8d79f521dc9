%% The Snow local-process benchmarks, same workloads on Erlang/OTP.
%% Run by snow-node-rt/benches/local.rs: erl -noshell -run snow_bench main SCALE -s init stop
%% Prints "RESULT name value" lines.
-module(snow_bench).
-export([main/1]).

scale(N, S) -> max(10, trunc(N * S)).

main([ScaleText]) ->
    S = list_to_float(ScaleText),
    result(memory_bytes_per_idle_process, memory(scale(100000, S))),
    result(spawn_exit_per_sec, spawn_rate(scale(200000, S))),
    result(send_throughput_msgs_per_sec, throughput(scale(2000000, S))),
    result(ping_pong_round_trip_us, ping_pong(scale(200000, S))),
    {SetupMs, Hops} = ring(10000, scale(1000000, S)),
    result(ring_10k_setup_ms, SetupMs),
    result(ring_10k_hops_per_sec, Hops),
    {FanOutUs, FanOutKib} = binary_fan_out(scale(100, S)),
    result(binary_64k_to_1k_procs_us, FanOutUs),
    result(binary_64k_to_1k_rss_kib, FanOutKib).

result(Name, Value) -> io:format("RESULT ~s ~.3f~n", [Name, float(Value)]).

rss() ->
    {ok, Bin} = file:read_file("/proc/self/statm"),
    [_, Rss | _] = string:lexemes(binary_to_list(Bin), " \n"),
    list_to_integer(Rss) * 4096.

seconds(T0) -> erlang:monotonic_time(microsecond) - T0 + 0.0.

memory(N) ->
    erlang:garbage_collect(),
    Before = rss(),
    Pids = [spawn(fun() -> receive _ -> ok end end) || _ <- lists:seq(1, N)],
    timer:sleep(500),
    After = rss(),
    [P ! go || P <- Pids],
    %% The pid list itself: N cons cells of 2 words.
    (After - Before - N * 16) / N.

spawn_rate(N) ->
    Parent = self(),
    T0 = erlang:monotonic_time(microsecond),
    [spawn(fun() -> Parent ! done end) || _ <- lists:seq(1, N)],
    collect(N),
    N / (seconds(T0) / 1.0e6).

collect(0) -> ok;
collect(N) -> receive _ -> collect(N - 1) end.

throughput(N) ->
    Parent = self(),
    T0 = erlang:monotonic_time(microsecond),
    R = spawn(fun() -> collect(N), Parent ! done end),
    send_n(R, 0, N),
    receive done -> ok end,
    N / (seconds(T0) / 1.0e6).

send_n(_, N, N) -> ok;
send_n(R, I, N) -> R ! I, send_n(R, I + 1, N).

ping_pong(N) ->
    Parent = self(),
    T0 = erlang:monotonic_time(microsecond),
    P = spawn(fun() -> pong(Parent, N) end),
    ping(P, N),
    seconds(T0) / N.

pong(_, 0) -> ok;
pong(Parent, N) -> receive _ -> Parent ! pong, pong(Parent, N - 1) end.

ping(_, 0) -> ok;
ping(P, N) -> P ! ping, receive _ -> ping(P, N - 1) end.

ring(Size, Hops) ->
    T0 = erlang:monotonic_time(microsecond),
    First = lists:foldl(fun(_, Next) -> spawn(fun() -> member(Next) end) end, self(), lists:seq(1, Size - 1)),
    Setup = seconds(T0) / 1000,
    T1 = erlang:monotonic_time(microsecond),
    First ! Hops,
    Rounds = token(First, Size),
    Pass = seconds(T1) / 1.0e6,
    First ! stop,
    receive stop -> ok end,
    {Setup, Rounds * Size / Pass}.

member(Next) ->
    receive
        stop -> Next ! stop;
        M -> Next ! M, member(Next)
    end.

token(First, Size) -> token(First, Size, 1).
token(First, Size, Rounds) ->
    receive
        Left when Left - Size =< 0 -> Rounds;
        Left -> First ! Left - Size, token(First, Size, Rounds + 1)
    end.

%% Rounds of: 1,000 fresh processes each receive one 64 KiB binary, acknowledge it and keep it
%% until told to stop. Mean microseconds from the first send to the last acknowledgement, and the
%% largest growth of the resident set over a round while all 1,000 hold it, in KiB.
binary_fan_out(Rounds) ->
    Bin = binary:copy(<<7>>, 65536),
    fan_out(Bin, Rounds, Rounds, 0, 0).

fan_out(_, 0, Rounds, Total, Peak) -> {Total / Rounds, Peak / 1024};
fan_out(Bin, Left, Rounds, Total, Peak) ->
    Parent = self(),
    Holders = [spawn(fun() -> hold(Parent) end) || _ <- lists:seq(1, 1000)],
    Before = rss(),
    T0 = erlang:monotonic_time(microsecond),
    [P ! Bin || P <- Holders],
    acks(1000),
    Took = seconds(T0),
    Grew = max(0, rss() - Before),
    [P ! stop || P <- Holders],
    fan_out(Bin, Left - 1, Rounds, Total + Took, max(Peak, Grew)).

hold(Parent) ->
    receive Kept -> Parent ! {got, self()}, receive stop -> Kept end end.

acks(0) -> ok;
acks(N) -> receive {got, _} -> acks(N - 1) end.
