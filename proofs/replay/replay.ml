(* Replay: runs the spec's recorded traces through the step extracted from Coq.

   Usage: replay TRACE...  Each trace (proofs/spec/src/trace.rs writes them) is a line
   "init<TAB>observation", then one line per event: a system call or Revoke unit
   (run by the extracted [step]) or a hardware step with its witnesses (run by the
   extracted [hw_next], which refuses it when its premise fails in the model), each
   with the spec's observation of the state after it. This program computes the same
   observation of the model's state (through the extracted obs_* functions) and stops
   at the first event where the two differ, or where the model refuses a hardware
   step, printing the trace, the step number, the event and both observations. *)

open Model

let fail fmt = Printf.ksprintf (fun m -> prerr_endline ("replay: " ^ m); exit 1) fmt

let rights = function
  | "rw" -> { rd = true; wr = true }
  | "r-" -> { rd = true; wr = false }
  | "-w" -> { rd = false; wr = true }
  | "--" -> { rd = false; wr = false }
  | r -> fail "bad rights %S" r

let rs r = (if r.rd then "r" else "-") ^ if r.wr then "w" else "-"

let num s = match int_of_string_opt s with
  | Some n when n >= 0 -> n
  | _ -> fail "bad number %S" s

let onum = function "-" -> None | s -> Some (num s)
let ostr = function None -> "-" | Some n -> string_of_int n

let kind = function
  | "KCNode" -> KCNode | "KTcb" -> KTcb | "KEndpoint" -> KEndpoint
  | "KNotification" -> KNotification | "KFrame" -> KFrame | "KPageTable" -> KPageTable
  | "KIoSpace" -> KIoSpace | "KIoPageTable" -> KIoPageTable
  | k -> fail "bad kind %S" k

(* An Evict list: "_" (empty) or comma-separated items of dot-separated fields. *)
let items f s =
  if s = "_" then [] else List.map (fun x -> f (String.split_on_char '.' x)) (String.split_on_char ',' s)

let tlbe = function
  | [ d; i; j; pa; r ] -> { t_dom = num d; t_i = num i; t_j = num j; t_pa = num pa; t_r = rights r }
  | _ -> fail "bad IOTLB entry"

let ctxe = function [ rid; r; d ] -> (num rid, (num r, num d)) | _ -> fail "bad context entry"
let irtee = function [ v; e ] -> (num v, onum e) | _ -> fail "bad IRTE cache entry"

let event line =
  match String.split_on_char ' ' line with
  | [ "Retype"; u; k; dst; d ] -> EStep (Retype (num u, kind k, num dst, num d))
  | [ "Copy"; a; b; r ] -> EStep (Copy (num a, num b, rights r))
  | [ "Delete"; x ] -> EStep (Delete (num x))
  | [ "RevokeOne"; x; v ] -> EStep (RevokeOne (num x, num v))
  | [ "MapIo"; f; io; i; j; r ] -> EStep (MapIo (num f, num io, num i, num j, rights r))
  | [ "UnmapIo"; f ] -> EStep (UnmapIo (num f))
  | [ "MapIoTable"; t; io; i ] -> EStep (MapIoTable (num t, num io, num i))
  | [ "UnmapIoTable"; t ] -> EStep (UnmapIoTable (num t))
  | [ "Assign"; io; p ] -> EStep (Assign (num io, num p))
  | [ "Unassign"; io; p ] -> EStep (Unassign (num io, num p))
  | [ "GetMsi"; c; p; d; v ] -> EStep (GetMsi (num c, num p, num d, num v))
  | [ "NextFault"; io ] -> EStep (NextFault (num io))
  | [ "FillTlb"; rid; r; d; i; j; pa; w ] ->
      EHw (FillTlb (num rid, num r, num d, num i, num j, num pa, rights w))
  | [ "FillCtx"; rid; r; d ] -> EHw (FillCtx (num rid, (num r, num d)))
  | [ "FillIrte"; v; e ] -> EHw (FillIrte (num v, onum e))
  | [ "Evict"; t; cc; ic ] -> EHw (Evict (items tlbe t, items ctxe cc, items irtee ic))
  | [ "Dma"; rid; i; j; w; pa ] -> EHw (Dma (num rid, num i, num j, rights w, num pa))
  | [ "DmaFault"; rid; i; j; w ] -> EHw (DmaFault (num rid, num i, num j, rights w))
  | [ "Msi"; rid; v ] -> EHw (Msi (num rid, num v))
  | _ -> fail "unknown event %S" line

let cap = function
  | CUntyped (b, sz, dev, wm) -> Printf.sprintf "U(%d,%d,%d,%d)" b sz (Bool.to_int dev) wm
  | CCNode pa -> Printf.sprintf "CN(%d)" pa
  | CTcb pa -> Printf.sprintf "TCB(%d)" pa
  | CEndpoint pa -> Printf.sprintf "EP(%d)" pa
  | CNotification pa -> Printf.sprintf "NT(%d)" pa
  | CPageTable pa -> Printf.sprintf "PT(%d)" pa
  | CFrame (pa, r, dev, m) ->
      let m = match m with None -> "-" | Some ((root, i), j) -> Printf.sprintf "%d.%d.%d" root i j in
      Printf.sprintf "F(%d,%s,%d,%s)" pa (rs r) (Bool.to_int dev) m
  | CIoSpace (root, d) -> Printf.sprintf "IOS(%d,%d)" root d
  | CIoPageTable (t, m) ->
      let m = match m with None -> "-" | Some (root, i) -> Printf.sprintf "%d.%d" root i in
      Printf.sprintf "IOPT(%d,%s)" t m
  | CPciDevice rid -> Printf.sprintf "PCI(%d)" rid
  | CIrqControl -> "IRQC"
  | CMsi (v, rid) -> Printf.sprintf "MSI(%d,%d)" v rid

let section name items = name ^ "[" ^ String.concat " " items ^ "]"
let by_key l = List.sort (fun (a, _) (b, _) -> compare a b) l
let range lo n = List.init n (fun k -> lo + k)

(* The total functions of the model (root entries, leaves, fault queues) are observed on
   every page of the boot state's untyped ranges, root and leaf indices 0..7 and domain
   ids 0..63: everything the recorded traces can name. An entry the spec has outside
   these would show as a difference, not be missed. *)
let pages =
  List.concat_map (function _, CUntyped (b, sz, _, _) -> range b sz | _ -> []) (obs_caps init)

let idx = range 0 8
let doms = range 0 64

let obs s =
  String.concat " "
    [
      section "caps" (List.map (fun (k, c) -> Printf.sprintf "%d:%s" k (cap c)) (by_key (obs_caps s)));
      section "parent" (List.map (fun (k, p) -> Printf.sprintf "%d:%d" k p) (by_key (obs_parent s)));
      section "orig" (List.map string_of_int (List.sort compare (obs_orig s)));
      section "doms" (List.map (fun (r, d) -> Printf.sprintf "%d:%d" r d) (by_key (obs_doms s)));
      section "root"
        (List.map (fun ((r, i), t) -> Printf.sprintf "%d.%d:%d" r i t) (obs_root s pages idx));
      section "leaf"
        (List.map
           (fun ((t, j), (pa, r)) -> Printf.sprintf "%d.%d:%d/%s" t j pa (rs r))
           (obs_leaf s pages idx));
      section "ctx" (List.map (fun (rid, (r, d)) -> Printf.sprintf "%d:%d/%d" rid r d) (by_key (obs_ctx s)));
      section "ctxc" (List.map (fun (rid, (r, d)) -> Printf.sprintf "%d:%d/%d" rid r d) s.ctxc);
      section "tlb"
        (List.map
           (fun e -> Printf.sprintf "%d.%d.%d:%d/%s" e.t_dom e.t_i e.t_j e.t_pa (rs e.t_r))
           s.iotlb);
      section "irte" (List.map (fun (v, e) -> Printf.sprintf "%d:%s" v (ostr e)) (by_key (obs_irte s)));
      section "irtec" (List.map (fun (v, e) -> Printf.sprintf "%d:%s" v (ostr e)) s.irtec);
      section "faults"
        (List.map
           (fun (d, q) ->
             Printf.sprintf "%d:%s" d
               (String.concat "," (List.map (fun f -> Printf.sprintf "%d.%d.%d" f.f_rid f.f_i f.f_j) q)))
           (obs_faults s doms));
      Printf.sprintf "kernel[%d,%d]" s.klo s.khi;
    ]

(* The sections of an observation line, to name those that differ. *)
let sections o =
  let re = Str.regexp "\\([a-z]+\\)\\[\\([^]]*\\)\\]" in
  let rec go pos acc =
    match Str.search_forward re o pos with
    | exception Not_found -> List.rev acc
    | _ -> go (Str.match_end ()) ((Str.matched_group 1 o, Str.matched_group 0 o) :: acc)
  in
  go 0 []

let differ file n ev spec model =
  Printf.eprintf "replay: %s: step %d (%s): the spec and the model extracted from Coq differ\n" file n ev;
  let ms = sections model in
  List.iter
    (fun (name, sv) ->
      let mv = try List.assoc name ms with Not_found -> "(none)" in
      if sv <> mv then Printf.eprintf "  spec:  %s\n  model: %s\n" sv mv)
    (sections spec);
  Printf.eprintf "  whole spec observation:  %s\n  whole model observation: %s\n" spec model;
  exit 1

let steps = ref 0
let hw_steps = ref 0

let replay file =
  let ic = open_in file in
  let line () = try Some (input_line ic) with End_of_file -> None in
  let split l = match String.index_opt l '\t' with
    | Some k -> (String.sub l 0 k, String.sub l (k + 1) (String.length l - k - 1))
    | None -> fail "%s: a line without an observation" file
  in
  let s = ref init in
  (match line () with
   | Some l ->
       let ev, o = split l in
       if ev <> "init" then fail "%s: the first line is not init" file;
       let m = obs init in
       if m <> o then differ file 0 "init" o m
   | None -> fail "%s: empty trace" file);
  let n = ref 0 in
  let rec go () =
    match line () with
    | None -> ()
    | Some l ->
        incr n;
        let ev, o = split l in
        let e = event ev in
        (match e with EStep _ -> incr steps | EHw _ -> incr hw_steps);
        (match replay_event !s e with
         | Some s' -> s := s'
         | None ->
             Printf.eprintf
               "replay: %s: step %d (%s): the model refuses this hardware step (its premise fails)\n  model: %s\n"
               file !n ev (obs !s);
             exit 1);
        let m = obs !s in
        if m <> o then differ file !n ev o m;
        go ()
  in
  go ();
  close_in ic

let () =
  let files = List.tl (Array.to_list Sys.argv) in
  if files = [] then fail "usage: replay TRACE...";
  List.iter replay files;
  Printf.printf
    "proofs: replay: %d traces, %d steps (%d system calls and Revoke units, %d hardware steps) through extracted Coq, 0 differences\n"
    (List.length files) (!steps + !hw_steps) !steps !hw_steps
