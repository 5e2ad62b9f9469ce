//! Issue 26: the ONNX importer's shape code on rank-0 inputs and empty axes (Split,
//! Squeeze, Slice with negative steps). Each small model must import correctly or give an
//! error; none may panic.

#[path = "onnx_node/mod.rs"]
mod onnx_node;
use onnx_node::*;

#[test]
fn rank_0_inputs_have_no_axis() {
    let split = import_one("Split", &[], vec![], vec![int_attr("axis", 0)], 2);
    expect_err(split, "axis 0 is out of range for rank 0");
    let squeeze = import_one("Squeeze", &[], vec![ints("axes", &[0])], vec![], 1);
    expect_err(squeeze, "axis 0 is out of range for rank 0");
    let slice = import_one(
        "Slice",
        &[],
        vec![ints("starts", &[0]), ints("ends", &[1])],
        vec![],
        1,
    );
    expect_err(slice, "out of range for rank 0");
    for op in ["Softmax", "ArgMax"] {
        expect_err(
            import_one(op, &[], vec![], vec![], 1),
            "out of range for rank 0",
        );
    }
    // Squeezing a scalar without axes is a no-op; unsqueezing it gives a vector.
    assert!(import_one("Squeeze", &[], vec![], vec![], 1).is_ok());
    let ir = import_one("Unsqueeze", &[], vec![ints("axes", &[0])], vec![], 1).unwrap();
    assert!(ir.contains("tensor<1xf32>"), "{ir}");
}

#[test]
fn empty_axes_import_as_empty_tensors() {
    // A negative step over an empty axis: nothing to take (this panicked in clamp).
    let ir = import_one(
        "Slice",
        &[0, 3],
        vec![
            ints("starts", &[-1]),
            ints("ends", &[-10]),
            ints("axes", &[0]),
            ints("steps", &[-1]),
        ],
        vec![],
        1,
    )
    .unwrap();
    assert!(ir.contains("-> tensor<0x3xf32>"), "{ir}");
    // Extreme steps count without overflowing.
    for step in [i64::MIN, i64::MAX] {
        let ir = import_one(
            "Slice",
            &[4],
            vec![
                ints("starts", &[if step < 0 { -1 } else { 0 }]),
                ints("ends", &[if step < 0 { i64::MIN } else { i64::MAX }]),
                ints("axes", &[0]),
                ints("steps", &[step]),
            ],
            vec![],
            1,
        )
        .unwrap();
        assert!(ir.contains("-> tensor<1xf32>"), "{step}: {ir}");
    }
    // Slicing more axes than the input has, or one axis twice, is an error.
    let too_many = import_one(
        "Slice",
        &[2],
        vec![ints("starts", &[0, 0]), ints("ends", &[1, 1])],
        vec![],
        1,
    );
    expect_err(too_many, "slice axis 1 is out of range for rank 1");
    let twice = import_one(
        "Slice",
        &[2],
        vec![
            ints("starts", &[0, 0]),
            ints("ends", &[1, 1]),
            ints("axes", &[0, -1]),
        ],
        vec![],
        1,
    );
    expect_err(twice, "slice axis 0 is given twice");
    // Splitting an empty axis in two: two empty parts.
    let ir = import_one("Split", &[0, 2], vec![], vec![], 2).unwrap();
    assert!(ir.contains("tensor<0x2xf32>, tensor<0x2xf32>"), "{ir}");
    // Squeeze and Unsqueeze with empty axes leave the shape alone.
    let ir = import_one("Squeeze", &[1, 2], vec![ints("axes", &[])], vec![], 1).unwrap();
    assert!(ir.contains("tensor<1x2xf32>"), "{ir}");
    let ir = import_one("Unsqueeze", &[1, 2], vec![ints("axes", &[])], vec![], 1).unwrap();
    assert!(ir.contains("tensor<1x2xf32>"), "{ir}");
}

#[test]
fn split_sizes_must_cut_the_axis() {
    let r = import_one("Split", &[4], vec![ints("split", &[1, 2])], vec![], 2);
    expect_err(r, "do not cut axis 0");
    let r = import_one("Split", &[4], vec![ints("split", &[5, -1])], vec![], 2);
    expect_err(r, "do not cut axis 0");
    let r = import_one("Split", &[4], vec![ints("split", &[2, 2])], vec![], 3);
    expect_err(r, "do not cut axis 0");
    let r = import_one("Split", &[4], vec![], vec![int_attr("num_outputs", 0)], 2);
    expect_err(r, "Split into 0 parts has 2 outputs");
    let r = import_one(
        "Split",
        &[4],
        vec![],
        vec![int_attr("num_outputs", i64::MAX)],
        2,
    );
    expect_err(r, "has 2 outputs");
    let ir = import_one("Split", &[5], vec![], vec![ints_attr("split", &[2, 3])], 2).unwrap();
    assert!(ir.contains("tensor<2xf32>, tensor<3xf32>"), "{ir}");
    let ir = import_one("Split", &[5], vec![], vec![], 2).unwrap();
    assert!(ir.contains("tensor<3xf32>, tensor<2xf32>"), "{ir}");
}

#[test]
fn repeated_squeeze_and_unsqueeze_axes_are_errors() {
    // [2, 2] on a vector: ranked 3, but only one 1 to insert, past the end (this panicked).
    for axes in [&[2, 2][..], &[0, -3], &[1, 1]] {
        expect_err(
            import_one("Unsqueeze", &[3], vec![ints("axes", axes)], vec![], 1),
            "Unsqueeze: axis",
        );
    }
    let e = import_one("Unsqueeze", &[3], vec![ints("axes", &[0, -3])], vec![], 1);
    expect_err(e, "Unsqueeze: axis 0 is given twice in axes [0, 0]");
    let e = import_one("Squeeze", &[1, 3], vec![ints("axes", &[0, -2])], vec![], 1);
    expect_err(e, "Squeeze: axis 0 is given twice");
    // Distinct axes still work.
    let ir = import_one("Unsqueeze", &[3], vec![ints("axes", &[0, -1])], vec![], 1).unwrap();
    assert!(ir.contains("tensor<1x3x1xf32>"), "{ir}");
}

/// What the ONNX op fuzzer found (`fuzz_onnx.rs`, single nodes on edge shapes).
#[test]
fn edge_constants_found_by_the_op_fuzzer_are_errors() {
    // Pad by i64::MIN: negating it overflowed.
    let pad = import_one("Pad", &[0], vec![ints("pads", &[-1, i64::MIN])], vec![], 1);
    expect_err(pad, "negative pads crop more than the whole dimension");
    // Reshape to [i64::MAX, 2]: the product overflowed.
    let reshape = import_one(
        "Reshape",
        &[],
        vec![ints("shape", &[i64::MAX, 2])],
        vec![],
        1,
    );
    expect_err(reshape, "cannot reshape");
    // Expand to [-1] imported as tensor<-1xf32>, which does not parse.
    let expand = import_one("Expand", &[], vec![ints("shape", &[-1])], vec![], 1);
    expect_err(expand, "dimensions must lie in 0..=4294967295");
    // An input dimension of 2^40 imported, and printed as IR the parser rejects.
    let huge = import_one("Squeeze", &[1 << 40], vec![ints("axes", &[])], vec![], 1);
    expect_err(huge, "input 'x' has an unsupported shape [1099511627776]");
}
