//! One-node ONNX models built in memory, imported: the helpers of the ONNX shape tests
//! and fuzz targets, included with `#[path]`.

#![allow(dead_code)]

use mkc_frontends::onnx::proto::*;
use mkc_frontends::onnx::{import, ImportOptions, OnnxModel};
use prost::Message;

pub fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            dim_value: Some(d),
                            dim_param: None,
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

pub fn ints(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        dims: vec![v.len() as i64],
        data_type: Some(7),
        int64_data: v.to_vec(),
        name: Some(name.into()),
        ..Default::default()
    }
}

pub fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(i),
        r#type: Some(2),
        ..Default::default()
    }
}

pub fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: v.to_vec(),
        r#type: Some(7),
        ..Default::default()
    }
}

/// One node `op(x, constant inputs...)` over an f32 `x` of shape `dims`, with `outputs`
/// outputs; the import's result (the printed module, or the error).
pub fn import_one(
    op: &str,
    dims: &[i64],
    consts: Vec<TensorProto>,
    attrs: Vec<AttributeProto>,
    outputs: usize,
) -> Result<String, String> {
    let mut input = vec!["x".to_string()];
    input.extend(consts.iter().map(|t| t.name.clone().unwrap()));
    let output: Vec<String> = (0..outputs).map(|i| format!("y{i}")).collect();
    let m = ModelProto {
        ir_version: Some(9),
        producer_name: Some("mkc-test".into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(18),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![NodeProto {
                input,
                output: output.clone(),
                name: Some("n".into()),
                op_type: Some(op.into()),
                attribute: attrs,
                ..Default::default()
            }],
            initializer: consts,
            input: vec![value("x", dims)],
            output: output
                .iter()
                .map(|o| ValueInfoProto {
                    name: Some(o.clone()),
                    r#type: None,
                })
                .collect(),
            value_info: vec![],
        }),
    };
    let dir = std::env::temp_dir().join(format!(
        "mkc-onnx-shapes-{}-{}",
        std::process::id(),
        std::thread::current()
            .name()
            .unwrap_or("t")
            .replace("::", "-")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{op}.onnx"));
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let model = OnnxModel::open(&path).map_err(|e| e.to_string())?;
    let r = import(&model, &ImportOptions::default())
        .map(|b| mkc_ir::printer::print(&b))
        .map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    r
}

pub fn expect_err(r: Result<String, String>, want: &str) {
    match r {
        Ok(ir) => panic!("expected an error containing {want:?}, got\n{ir}"),
        Err(e) => assert!(e.contains(want), "{e}"),
    }
}
