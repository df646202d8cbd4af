// bitmix_beat_memory: hw.memories.BeatMemory(kind="bram", external=True) for the virtual board
// (Verilator only). The same ports and timing as the Amaranth memory it stands in for: a read
// (re) of addr puts the beat on rdata at the next clock edge, and rdata holds it until the next
// read; byte b of wdata is written where we[b] is set; a read and a write of one address in the
// same cycle read the old beat (Amaranth's non-transparent read port). No initialiser: that is
// the point (hw/memories.py's module docstring says why).
module bitmix_beat_memory #(parameter DEPTH = 1, parameter NBYTES = 1, parameter ABITS = 1) (
  input clk,
  input [ABITS-1:0] addr,
  input re,
  input [NBYTES-1:0] we,
  input [8*NBYTES-1:0] wdata,
  output reg [8*NBYTES-1:0] rdata
);
  reg [8*NBYTES-1:0] mem [0:DEPTH-1];
  wire [8*NBYTES-1:0] mask;
  genvar b;
  generate
    for (b = 0; b < NBYTES; b = b + 1) begin : byte_mask
      assign mask[8*b +: 8] = {8{we[b]}};
    end
  endgenerate
  always @(posedge clk) begin
    if (re) rdata <= mem[addr];
    if (|we) mem[addr] <= (mem[addr] & ~mask) | (wdata & mask);
  end
endmodule
