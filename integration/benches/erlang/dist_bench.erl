%% Erlang/OTP baseline of Snow's distribution benchmark (integration/benches/dist.rs).
%%
%% Two nodes on loopback, started by the Rust harness as child processes with a private cookie
%% and a private epmd (ERL_EPMD_PORT), over plain TCP or TLS distribution:
%%
%%   server node: erl -name b@127.0.0.1 ... -s dist_bench server
%%       registers `bench_sink' (counts messages, acknowledges every K), `bench_echo' (answers
%%       every {From, Seq} with Seq) and `bench_fanin' (acknowledges every ?FANIN_BATCH th
%%       structured message of each sender), prints READY.
%%   client node: erl -name a@127.0.0.1 ... -s dist_bench client b@127.0.0.1 N64 K64 N1k K1k N64k K64k Rtts Flood Calls Fanin IdleSecs
%%       connects (timed), runs the workloads and prints one `RESULT key value' line per figure,
%%       then halts (exit 0; exit 1 with an `ERROR' line on failure). The client runs -hidden, so
%%       that `global' does not re-open a connection the reconnect measurement just closed.
%%       Each timed workload sits between `PHASE Name' and `PHASE_END Name Count' lines, after
%%       each of which the client waits for `GO' on stdin: the harness measures what the phase
%%       cost both nodes (integration/src/meter.rs). Calls = 0, Fanin = 0 or IdleSecs = 0 skips
%%       that workload.
%%
%% The workloads mirror the Snow side exactly: the payload is a bare binary of the given size;
%% the sender keeps at most ?WINDOW batches of K messages unacknowledged, so it measures delivery
%% to the receiving process, not filling buffers.
-module(dist_bench).
-export([server/0, client/1]).

-define(WINDOW, 4).
-define(RECONNECTS, 10).
-define(FANIN_SENDERS, 4).
-define(FANIN_BATCH, 100).
-define(FANIN_BLOB, 200).

%% ---- server node ---------------------------------------------------------------------------

server() ->
    register(bench_sink, spawn(fun() -> sink_idle() end)),
    register(bench_echo, spawn(fun() -> echo() end)),
    register(bench_fanin, spawn(fun() -> fanin_receiver() end)),
    io:format("READY~n"),
    ok.

sink_idle() ->
    receive
        {whois, From} ->
            From ! {sink, self()},
            sink_idle();
        {start, From, K} ->
            sink(From, K, 0)
    end.

sink(From, K, N) ->
    receive
        Bin when is_binary(Bin) ->
            N1 = N + 1,
            case N1 rem K of
                0 -> From ! {ack, N1};
                _ -> ok
            end,
            sink(From, K, N1);
        {start, From2, K2} ->
            sink(From2, K2, 0);
        {whois, Who} ->
            Who ! {sink, self()},
            sink(From, K, N)
    end.

echo() ->
    receive
        {whois, From} ->
            From ! {echo, self()},
            echo();
        {From, Seq} ->
            From ! Seq,
            echo()
    end.

%% Acknowledges every ?FANIN_BATCH th structured message of each sender, by its sequence number.
fanin_receiver() ->
    receive
        {event, From, Seq, Map, {meta, _, _}, Bin} when is_map(Map), is_binary(Bin) ->
            case Seq rem ?FANIN_BATCH of
                0 -> From ! {ack, Seq};
                _ -> ok
            end,
            fanin_receiver();
        {whois, From} ->
            From ! {fanin, self()},
            fanin_receiver()
    end.

%% ---- client node ---------------------------------------------------------------------------

client([Peer | Counts]) ->
    try
        run(Peer, [list_to_integer(atom_to_list(C)) || C <- Counts]),
        halt(0)
    catch
        Class:Reason:Stack ->
            io:format("ERROR ~p:~p ~p~n", [Class, Reason, Stack]),
            halt(1)
    end.

run(Peer, [N64, K64, N1k, K1k, N64k, K64k, Rtts, Flood, Calls, Fanin, IdleSecs]) ->
    T0 = erlang:monotonic_time(nanosecond),
    true = net_kernel:connect_node(Peer),
    T1 = erlang:monotonic_time(nanosecond),
    result(connect_first_ns, T1 - T0),
    Sink = whois(bench_sink, Peer, sink),
    Echo = whois(bench_echo, Peer, echo),
    FaninTo = whois(bench_fanin, Peer, fanin),
    phase(flood),
    flood(Sink, Flood),
    phase_end(flood, Flood),
    throughput(Sink, 64, N64, K64),
    throughput(Sink, 1024, N1k, K1k),
    throughput(Sink, 65536, N64k, K64k),
    pingpong(Echo, Rtts),
    [calls(Peer, Callers, Calls) || Calls > 0, Callers <- [16, 64]],
    [fanin(FaninTo, Fanin) || Fanin > 0],
    [idle(IdleSecs) || IdleSecs > 0],
    reconnects(Peer).

%% The phase protocol: the harness samples both nodes' CPU and the connection's byte counters at
%% each line and answers GO.
phase(Name) ->
    gate(io_lib:format("PHASE ~s", [Name])).

phase_end(Name, Count) ->
    gate(io_lib:format("PHASE_END ~s ~b", [Name, Count])).

gate(Line) ->
    io:format("~s~n", [Line]),
    case io:get_line("") of
        "GO\n" -> ok;
        Other -> error({expected_go, lists:flatten(Line), Other})
    end.

%% Total calls from Callers concurrent processes, each sending {self(), Seq} to the server's
%% registered bench_echo by name and waiting for Seq; a warm-up of a tenth first.
calls(Peer, Callers, Total) ->
    _ = call_samples(Peer, Callers, Total div 10),
    Name = io_lib:format("calls_~b", [Callers]),
    phase(Name),
    T0 = erlang:monotonic_time(nanosecond),
    Samples = lists:sort(call_samples(Peer, Callers, Total)),
    T1 = erlang:monotonic_time(nanosecond),
    phase_end(Name, length(Samples)),
    result(io_lib:format("calls_~b_n", [Callers]), length(Samples)),
    result(io_lib:format("calls_~b_ns", [Callers]), T1 - T0),
    result(io_lib:format("calls_~b_p50_ns", [Callers]), percentile(Samples, 50)),
    result(io_lib:format("calls_~b_p99_ns", [Callers]), percentile(Samples, 99)).

call_samples(Peer, Callers, Total) ->
    PerCaller = max(1, Total div Callers),
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {calls_done, self(), caller(Peer, PerCaller, [])} end)
            || _ <- lists:seq(1, Callers)],
    lists:append([receive {calls_done, P, S} -> S after 120000 -> error(caller_timeout) end || P <- Pids]).

caller(_Peer, 0, Acc) -> Acc;
caller(Peer, N, Acc) ->
    T0 = erlang:monotonic_time(nanosecond),
    {bench_echo, Peer} ! {self(), N},
    receive
        N -> caller(Peer, N - 1, [erlang:monotonic_time(nanosecond) - T0 | Acc])
    after 10000 -> error(call_timeout)
    end.

%% ?FANIN_SENDERS processes each send PerSender structured messages to To, keeping at most
%% ?WINDOW batches of ?FANIN_BATCH unacknowledged; a warm-up of a tenth first.
fanin(To, PerSender0) ->
    _ = fanin_run(To, max(?FANIN_BATCH, PerSender0 div 10)),
    PerSender = max(1, PerSender0 div ?FANIN_BATCH) * ?FANIN_BATCH,
    phase(fanin),
    T0 = erlang:monotonic_time(nanosecond),
    fanin_run(To, PerSender),
    T1 = erlang:monotonic_time(nanosecond),
    phase_end(fanin, PerSender * ?FANIN_SENDERS),
    result(fanin_msgs, PerSender * ?FANIN_SENDERS),
    result(fanin_ns, T1 - T0).

fanin_run(To, PerSender) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> fanin_sender(To, PerSender), Parent ! {fanin_done, self()} end)
            || _ <- lists:seq(1, ?FANIN_SENDERS)],
    [receive {fanin_done, P} -> ok after 120000 -> error(fanin_timeout) end || P <- Pids].

fanin_sender(To, PerSender) ->
    Blob = binary:copy(<<7>>, ?FANIN_BLOB),
    fanin_loop(To, Blob, 1, PerSender),
    wait_ack(PerSender div ?FANIN_BATCH * ?FANIN_BATCH).

fanin_loop(_To, _Blob, Seq, Total) when Seq > Total -> ok;
fanin_loop(To, Blob, Seq, Total) ->
    To ! structured(self(), Seq, Blob),
    case Seq rem ?FANIN_BATCH of
        0 when Seq > ?WINDOW * ?FANIN_BATCH -> wait_ack(Seq - ?WINDOW * ?FANIN_BATCH);
        _ -> ok
    end,
    fanin_loop(To, Blob, Seq + 1, Total).

%% The same event as the Snow side's (integration/src/snow_bench.rs, `structured`).
structured(From, Seq, Blob) ->
    {event, From, Seq,
     #{<<"user">> => <<"alice">>, <<"room">> => <<"lobby">>, <<"kind">> => <<"text">>, <<"lang">> => <<"en">>},
     {meta, {Seq, 42}, {<<"web">>, ok}},
     Blob}.

%% The connection stays up, nothing is sent: the harness measures the nodes' idle CPU.
idle(Secs) ->
    phase(idle),
    timer:sleep(Secs * 1000),
    phase_end(idle, 0).

whois(Name, Peer, Tag) ->
    {Name, Peer} ! {whois, self()},
    receive
        {Tag, Pid} -> Pid
    after 10000 -> error({no_answer_from, Name})
    end.

result(Key, Value) ->
    io:format("RESULT ~s ~p~n", [Key, Value]).

%% The flood: Total binaries of 1 KiB sent with plain `!', no acknowledgement window (the
%% distribution port's busy limit suspends the sender), acknowledged once at the end; with the
%% node's resident memory before and its peak (VmHWM) after.
flood(Sink, Total) ->
    Bin = binary:copy(<<7>>, 1024),
    Sink ! {start, self(), Total},
    Before = vm_kib("VmRSS"),
    T0 = erlang:monotonic_time(nanosecond),
    flood_loop(Sink, Bin, Total),
    wait_ack(Total),
    T1 = erlang:monotonic_time(nanosecond),
    result(flood_msgs, Total),
    result(flood_ns, T1 - T0),
    result(flood_rss_before_kib, Before),
    result(flood_peak_kib, vm_kib("VmHWM")).

flood_loop(_Sink, _Bin, 0) -> ok;
flood_loop(Sink, Bin, N) ->
    Sink ! Bin,
    flood_loop(Sink, Bin, N - 1).

%% A `kB' field of /proc/self/status, in KiB (0 if unreadable).
vm_kib(Field) ->
    case file:read_file("/proc/self/status") of
        {ok, Status} ->
            Lines = string:split(binary_to_list(Status), "\n", all),
            Prefix = Field ++ ":",
            case [L || L <- Lines, lists:prefix(Prefix, L)] of
                [Line | _] ->
                    [Kib | _] = string:lexemes(lists:nthtail(length(Prefix), Line), " \t"),
                    list_to_integer(Kib);
                [] -> 0
            end;
        _ -> 0
    end.

%% Sends Total binaries of Size bytes, K per acknowledged batch; first a warm-up of a tenth.
throughput(Sink, Size, Total, K) ->
    Bin = binary:copy(<<7>>, Size),
    Warm = max(K, (Total div 10) div K * K),
    send_batch(Sink, Bin, Warm, K),
    Total1 = max(K, Total div K * K),
    Phase = io_lib:format("tput_~b", [Size]),
    phase(Phase),
    T0 = erlang:monotonic_time(nanosecond),
    send_batch(Sink, Bin, Total1, K),
    T1 = erlang:monotonic_time(nanosecond),
    phase_end(Phase, Total1),
    result(io_lib:format("tput_~b_msgs", [Size]), Total1),
    result(io_lib:format("tput_~b_ns", [Size]), T1 - T0).

send_batch(Sink, Bin, Total, K) ->
    Sink ! {start, self(), K},
    send_loop(Sink, Bin, 0, Total, K),
    wait_ack(Total).

send_loop(_Sink, _Bin, Total, Total, _K) ->
    ok;
send_loop(Sink, Bin, Sent, Total, K) ->
    Sink ! Bin,
    S = Sent + 1,
    case S rem K of
        0 when S > ?WINDOW * K -> wait_ack(S - ?WINDOW * K);
        _ -> ok
    end,
    send_loop(Sink, Bin, S, Total, K).

wait_ack(Min) ->
    receive
        {ack, N} when N >= Min -> ok;
        {ack, _} -> wait_ack(Min)
    after 60000 -> error({ack_timeout, Min})
    end.

%% Rtts round trips of a small message; prints every sample's summary (median, p99).
pingpong(Echo, Rtts) ->
    _ = [roundtrip(Echo, I) || I <- lists:seq(1, 1000)],
    phase(rtt),
    Samples = lists:sort([roundtrip(Echo, I) || I <- lists:seq(1, Rtts)]),
    phase_end(rtt, Rtts),
    result(rtt_median_ns, percentile(Samples, 50)),
    result(rtt_p99_ns, percentile(Samples, 99)).

roundtrip(Echo, Seq) ->
    T0 = erlang:monotonic_time(nanosecond),
    Echo ! {self(), Seq},
    receive
        Seq -> erlang:monotonic_time(nanosecond) - T0
    after 10000 -> error(echo_timeout)
    end.

percentile(Sorted, P) ->
    N = length(Sorted),
    lists:nth(max(1, min(N, (N * P + 99) div 100)), Sorted).

%% Disconnect and connect again ?RECONNECTS times: the set-up cost of a fresh connection (epmd
%% lookup, TCP, TLS, distribution handshake), with the median printed.
reconnects(Peer) ->
    Samples = lists:sort([reconnect(Peer) || _ <- lists:seq(1, ?RECONNECTS)]),
    result(connect_median_ns, percentile(Samples, 50)).

reconnect(Peer) ->
    true = erlang:disconnect_node(Peer),
    wait_gone(Peer, 200),
    T0 = erlang:monotonic_time(nanosecond),
    true = net_kernel:connect_node(Peer),
    erlang:monotonic_time(nanosecond) - T0.

wait_gone(_Peer, 0) ->
    error(disconnect_timeout);
wait_gone(Peer, Tries) ->
    timer:sleep(20),
    case lists:member(Peer, nodes(connected)) of
        true -> wait_gone(Peer, Tries - 1);
        false -> timer:sleep(50)
    end.
