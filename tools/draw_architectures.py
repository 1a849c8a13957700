"""Draw book/figures/architectures.svg: the paper's Figures 2 and 3 as asdlib.models implements them.

The layer widths are the defaults of asdlib.config.Config (640 -> 4 x 128 -> 8), written in below; the SVG
is committed, so the book build does not run this. Rerun `python tools/draw_architectures.py` after an edit.
"""
from pathlib import Path

W = 940
out = []
def t(x, y, s, size=13, anchor="middle", weight="normal", color="#222", style="normal"):
    out.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" font-style="{style}" fill="{color}">{s}</text>')
def rect(x, y, w, h, fill, stroke="#333", rx=2, dash=None):
    d = f' stroke-dasharray="{dash}"' if dash else ""
    out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx}" fill="{fill}" stroke="{stroke}"{d}/>')
def arrow(x1, y1, x2, y2, color="#333"):
    out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" stroke-width="1.5" marker-end="url(#arr)"/>')
def h(n):
    return 14 + 0.17 * n
ENC, DEC, LAT, IO = "#9ecae1", "#fdae6b", "#74c476", "#d9d9d9"

def chain(x0, yc, sizes, colors, gap=26, bw=16, labels=True):
    """Bars centred on yc; returns list of (x_left, x_right, height)."""
    xs = []
    x = x0
    for n, c in zip(sizes, colors):
        hh = h(n)
        rect(x, yc - hh / 2, bw, hh, c)
        if labels:
            t(x + bw / 2, yc + hh / 2 + 13, str(n), 10, color="#555")
        xs.append((x, x + bw, hh))
        x += bw + gap
    for (a, b) in zip(xs[:-1], xs[1:]):
        arrow(a[1] + 1, yc, b[0] - 2, yc, "#888")
    return xs

# ---- (a) baseline ----
t(20, 28, "(a) DCASE 2023 Task 2 baseline autoencoder (paper's Figure 2)", 15, "start", "bold")
yc = 140
enc = chain(90, yc, [640, 128, 128, 128, 128], [IO, ENC, ENC, ENC, ENC])
z = chain(enc[-1][1] + 26, yc, [8], [LAT])
arrow(enc[-1][1] + 1, yc, z[0][0] - 2, yc, "#888")
dec = chain(z[0][1] + 26, yc, [128, 128, 128, 128, 640], [DEC, DEC, DEC, DEC, IO])
arrow(z[0][1] + 1, yc, dec[0][0] - 2, yc, "#888")
t(enc[0][0] + 8, yc - h(640) / 2 - 10, "x", 15, style="italic")
t(z[0][0] + 8, yc - h(8) / 2 - 10, "z", 15, style="italic")
t(dec[-1][0] + 8, yc - h(640) / 2 - 10, "x̂", 15, style="italic")
ex = (enc[1][0] + enc[-1][1]) / 2 + 10
t(ex, 62, "Enc: Linear + BatchNorm + ReLU", 11, color="#08519c")
dx = (dec[0][0] + dec[-2][1]) / 2
t(dx, 62, "Dec: Linear + BatchNorm + ReLU", 11, color="#a63603")
t(dx, 76, "(the last, 128 → 640, is linear)", 10, color="#a63603")
x_right = dec[-1][1] + 30
t(x_right, yc - 18, "loss: MSE(x, x̂)", 13, "start")
t(x_right, yc + 2, "score: MSE(x, x̂)", 13, "start")
t(x_right, yc + 20, "or Mahalanobis(x, x̂, Σ⁻¹)", 13, "start")
t(x_right, yc + 44, "267,928 parameters", 11, "start", color="#555")

# ---- (b) dual ----
y0 = 250
t(20, y0 + 28, "(b) Dual autoencoder: reference and difference channel, shared latent space (paper's Figure 3)", 15, "start", "bold")
y1, y2 = y0 + 125, y0 + 305
ym = (y1 + y2) / 2
e1 = chain(90, y1, [640, 128, 128, 128, 128, 8], [IO, ENC, ENC, ENC, ENC, LAT], gap=20)
e2 = chain(90, y2, [640, 128, 128, 128, 128, 8], [IO, ENC, ENC, ENC, ENC, LAT], gap=20)
t(e1[0][0] + 8, y1 - h(640) / 2 - 10, "x  (mic r)", 14, style="italic")
t(e2[0][0] + 8, y2 - h(640) / 2 - 10, "x′ (mic r − mic o)", 14, style="italic")
t(e1[-1][0] + 8, y1 - h(8) / 2 - 8, "z", 14, style="italic")
t(e2[-1][0] + 8, y2 - h(8) / 2 - 8, "z′", 14, style="italic")
t((e1[1][0] + e1[-2][1]) / 2, y1 - 48, "Enc_ref", 12, color="#08519c")
t((e2[1][0] + e2[-2][1]) / 2, y2 - 48, "Enc_dif", 12, color="#08519c")
# concatenation
cx = e1[-1][1] + 50
rect(cx, ym - h(16) / 2, 16, h(16), LAT)
t(cx + 8, ym + h(16) / 2 + 14, "16", 10, color="#555")
t(cx + 8, ym - h(16) / 2 - 8, "[z; z′]", 13, style="italic")
arrow(e1[-1][1] + 1, y1, cx - 2, ym - 6, "#2ca02c")
arrow(e2[-1][1] + 1, y2, cx - 2, ym + 6, "#2ca02c")
d1 = chain(cx + 70, y1, [128, 128, 128, 128, 640], [DEC, DEC, DEC, DEC, IO], gap=20)
d2 = chain(cx + 70, y2, [128, 128, 128, 128, 640], [DEC, DEC, DEC, DEC, IO], gap=20)
arrow(cx + 17, ym - 6, d1[0][0] - 2, y1, "#2ca02c")
arrow(cx + 17, ym + 6, d2[0][0] - 2, y2, "#2ca02c")
t((d1[0][0] + d1[-2][1]) / 2, y1 - 48, "Dec_ref", 12, color="#a63603")
t((d2[0][0] + d2[-2][1]) / 2, y2 - 48, "Dec_dif", 12, color="#a63603")
t(d1[-1][0] + 8, y1 - h(640) / 2 - 10, "x̂", 15, style="italic")
t(d2[-1][0] + 8, y2 - h(640) / 2 - 10, "x̂′", 15, style="italic")
xr = d1[-1][1] + 28
t(xr, y1 - 6, "L_ref = MSE(x, x̂)", 13, "start")
t(xr, y1 + 12, "A_ref(x)", 13, "start")
t(xr, y2 - 6, "L_dif = MSE(x′, x̂′)", 13, "start")
t(xr, y2 + 12, "A_dif(x′)", 13, "start")
rect(xr - 8, ym - 34, 196, 64, "#f7f7f7", "#999", rx=6)
t(xr + 90, ym - 12, "loss: L = L_ref + α L_dif", 13)
t(xr + 90, ym + 8, "score: A = A_ref + α A_dif", 13)
t(xr + 90, ym + 24, "(MSE or Mahalanobis)", 10, color="#555")
# legend
ly = y2 + 105
for i, (c, name) in enumerate([(IO, "input / output (640)"), (ENC, "encoder layer (128)"), (LAT, "latent (8; 16 concatenated)"), (DEC, "decoder layer (128)")]):
    rect(90 + i * 200, ly - 10, 14, 14, c)
    t(110 + i * 200, ly + 2, name, 11, "start", color="#333")
t(90, ly + 26, "Bar heights grow with layer width; numbers under the bars are widths. Every layer but the decoders' last is Linear + BatchNorm + ReLU.", 11, "start", color="#555")
H = ly + 40
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H:.0f}" viewBox="0 0 {W} {H:.0f}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
       '<title>The baseline autoencoder and the dual autoencoder</title>',
       '<defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
       f'<rect width="{W}" height="{H:.0f}" fill="white"/>', *out, "</svg>"]
open(Path(__file__).resolve().parents[1] / "book" / "figures" / "architectures.svg", "w").write("\n".join(svg) + "\n")
print("ok", H)
