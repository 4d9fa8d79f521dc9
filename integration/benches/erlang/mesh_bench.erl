%% The Erlang side of the mesh-scale benchmark (integration/benches/mesh.rs): one node of a mesh,
%% speaking the same line protocol as snow-test-node, so that one measuring function drives both.
%%
%% Prints `READY`, then `NODEUP Name` / `NODEDOWN Name` for every connection that comes up or goes
%% down (net_kernel:monitor_nodes/1). Reads commands on standard input: `connect Name` (answered
%% `CONNECTED Name true|false|ignored`, in the background) and `quit`; end of input halts too.
-module(mesh_bench).
-export([node/0]).

node() ->
    ok = net_kernel:monitor_nodes(true),
    Self = self(),
    spawn_link(fun() -> read_lines(Self) end),
    io:format("READY~n"),
    loop().

read_lines(To) ->
    case io:get_line("") of
        eof -> To ! eof;
        {error, _} -> To ! eof;
        Line -> To ! {line, string:trim(Line)}, read_lines(To)
    end.

loop() ->
    receive
        {nodeup, Node} ->
            io:format("NODEUP ~s~n", [Node]),
            loop();
        {nodedown, Node} ->
            io:format("NODEDOWN ~s~n", [Node]),
            loop();
        {line, "connect " ++ Peer} ->
            spawn(fun() ->
                Result = net_kernel:connect_node(list_to_atom(Peer)),
                io:format("CONNECTED ~s ~p~n", [Peer, Result])
            end),
            loop();
        {line, "quit"} ->
            erlang:halt(0);
        {line, _} ->
            loop();
        eof ->
            erlang:halt(0)
    end.
