"""One script per table and figure of the IM-Loss paper (NeurIPS 2022), side by side with its numbers.

    python reproduce/table1.py            # Table 1: the IM-Loss / ESG / tdBN ablation
    python reproduce/table2.py            # Table 2: every "Our method" row, with Dspike's measured overhead
    python reproduce/fig2_spike_rate.py   # Fig. 2: layer-wise spike rates without normalization
    python reproduce/fig3_surrogate.py    # Fig. 3: the asymptotic function and its gradient (exact math)
    python reproduce/fig4_esg.py          # Fig. 4: accuracy curves with k = 1, k = 10 and ESG
    python reproduce/claims.py            # the paper's checkable claims, measured: HOLDS / DOES NOT HOLD

Budgets (--budget): `paper` (the paper's networks and recipe on the real datasets under
--data-root), `smoke` (the default without a GPU or a dataset: the same code path at reduced
width, epochs and data, each script within about 10 minutes on 2 CPU cores) and `tiny` (CI-sized).
Results land in reproduce/results/<script>-<budget>.{csv,md,png}; smoke and tiny rows are
labelled as such and carry no accuracy claim about the paper's datasets.
"""
