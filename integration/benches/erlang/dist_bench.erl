%% Erlang/OTP baseline of Snow's distribution benchmark (integration/benches/dist.rs).
%%
%% Two nodes on loopback, started by the Rust harness as child processes with a private cookie
%% and a private epmd (ERL_EPMD_PORT), over plain TCP or TLS distribution:
%%
%%   server node: erl -name b@127.0.0.1 ... -s dist_bench server
%%       registers `bench_sink' (counts messages, acknowledges every K) and `bench_echo'
%%       (answers every {From, Seq} with Seq), prints READY.
%%   client node: erl -name a@127.0.0.1 ... -s dist_bench client b@127.0.0.1 N64 K64 N1k K1k N64k K64k Rtts Flood
%%       connects (timed), runs the workloads and prints one `RESULT key value' line per figure,
%%       then halts (exit 0; exit 1 with an `ERROR' line on failure). The client runs -hidden, so
%%       that `global' does not re-open a connection the reconnect measurement just closed.
%%
%% The workloads mirror the Snow side exactly: the payload is a bare binary of the given size;
%% the sender keeps at most ?WINDOW batches of K messages unacknowledged, so it measures delivery
%% to the receiving process, not filling buffers.
-module(dist_bench).
-export([server/0, client/1]).

-define(WINDOW, 4).
-define(RECONNECTS, 10).

%% ---- server node ---------------------------------------------------------------------------

server() ->
    register(bench_sink, spawn(fun() -> sink_idle() end)),
    register(bench_echo, spawn(fun() -> echo() end)),
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

run(Peer, [N64, K64, N1k, K1k, N64k, K64k, Rtts, Flood]) ->
    T0 = erlang:monotonic_time(nanosecond),
    true = net_kernel:connect_node(Peer),
    T1 = erlang:monotonic_time(nanosecond),
    result(connect_first_ns, T1 - T0),
    Sink = whois(bench_sink, Peer, sink),
    Echo = whois(bench_echo, Peer, echo),
    flood(Sink, Flood),
    throughput(Sink, 64, N64, K64),
    throughput(Sink, 1024, N1k, K1k),
    throughput(Sink, 65536, N64k, K64k),
    pingpong(Echo, Rtts),
    reconnects(Peer).

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
    T0 = erlang:monotonic_time(nanosecond),
    send_batch(Sink, Bin, Total1, K),
    T1 = erlang:monotonic_time(nanosecond),
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
    Samples = lists:sort([roundtrip(Echo, I) || I <- lists:seq(1, Rtts)]),
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
