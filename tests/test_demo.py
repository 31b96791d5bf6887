import pytest

from sklae._demo import compare_on_digits, format_table, main


@pytest.mark.slow
def test_demo_autoencoder_beats_pca_on_digits(capsys):
    rows = {row["method"]: row for row in compare_on_digits(code_size=8)}
    pca, autoencoder = rows["PCA(8)"], rows["AutoencoderTransformer(8)"]
    assert pca["test MSE"] == pytest.approx(0.0249, abs=5e-4)
    assert autoencoder["test MSE"] < 0.8 * pca["test MSE"]
    assert autoencoder["logistic acc"] > pca["logistic acc"]
    table = format_table(rows.values())
    assert table.count("\n") == 3
    assert "| PCA(8) | 0.0249 |" in table


@pytest.mark.slow  # trains the demo's autoencoder on digits
def test_demo_command_line_prints_table(capsys):
    main(["--code-size", "2"])
    out = capsys.readouterr().out
    assert "| PCA(2) |" in out
    assert "| AutoencoderTransformer(2) |" in out
