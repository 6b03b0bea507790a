// sweep-train's parameters: SWEEP_PARAMS JSON, W&B-style --key=value arguments,
// defaults, and every way a value can be wrong.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "trainer/params.h"

namespace sweep::trainer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<TrainerParams> Parse(
    const std::string& json, const std::vector<std::string>& args = {},
    std::optional<std::string> cuda = std::nullopt) {
  return ParseParams(json, args, cuda);
}

TEST(TrainerParamsTest, NoParametersGiveTheDocumentedDefaults) {
  auto p = Parse("");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->dataset, "fashion-mnist");
  EXPECT_EQ(p->data_dir, "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(p->model, "mlp");
  EXPECT_THAT(p->hidden, ElementsAre(256, 128));
  EXPECT_EQ(p->optimizer, "sgd");
  EXPECT_EQ(p->lr, 0.01);
  EXPECT_EQ(p->batch_size, 64);
  EXPECT_EQ(p->epochs, 5);
  EXPECT_EQ(p->threads, 1);
  EXPECT_EQ(p->device, "cpu");
  EXPECT_EQ(p->val_fraction, 0.1);
}

TEST(TrainerParamsTest, SweepParamsJsonSetsTypedValues) {
  auto p = Parse(R"({"lr": 0.003, "hidden": [512, 64, 32], "batch_norm": true,
                     "optimizer": "adam", "epochs": 3, "dropout": 0.25,
                     "augment": "flip", "freeze": ["fc1"], "init_from": "/x/last.pt"})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->lr, 0.003);
  EXPECT_THAT(p->hidden, ElementsAre(512, 64, 32));
  EXPECT_TRUE(p->batch_norm);
  EXPECT_EQ(p->optimizer, "adam");
  EXPECT_EQ(p->epochs, 3);
  EXPECT_EQ(p->dropout, 0.25);
  EXPECT_FALSE(p->augment_crop);
  EXPECT_TRUE(p->augment_flip);
  EXPECT_THAT(p->freeze, ElementsAre("fc1"));
}

TEST(TrainerParamsTest, ArgumentsAsWandbWritesThemParseAndOverrideSweepParams) {
  auto p = Parse(R"({"lr": 0.1, "epochs": 7})",
                 {"--lr=1e-05", "--hidden=[128,64]", "--batch_norm=True",
                  "--nesterov=False", "--init_from=None", "--optimizer=adamw",
                  "--augment=True", "--batch_size=32"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->lr, 1e-05);
  EXPECT_EQ(p->epochs, 7);
  EXPECT_THAT(p->hidden, ElementsAre(128, 64));
  EXPECT_TRUE(p->batch_norm);
  EXPECT_FALSE(p->nesterov);
  EXPECT_EQ(p->init_from, "");
  EXPECT_TRUE(p->augment_crop);
  EXPECT_TRUE(p->augment_flip);
  EXPECT_EQ(p->batch_size, 32);
  EXPECT_EQ(p->weight_decay, 0.01) << "AdamW's default decay, as in PyTorch";
}

TEST(TrainerParamsTest, BareFlagIsTrueAndIntegralFloatIsAnInteger) {
  auto p = Parse("", {"--batch_norm", "--epochs=3.0", "--hidden=64"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->batch_norm);
  EXPECT_EQ(p->epochs, 3);
  EXPECT_THAT(p->hidden, ElementsAre(64));
}

TEST(TrainerParamsTest,
     DeviceDefaultsToCudaOnlyWhenCudaVisibleDevicesIsNonEmpty) {
  EXPECT_EQ(Parse("", {}, "0")->device, "cuda");
  EXPECT_EQ(Parse("", {}, "")->device, "cpu");
  EXPECT_EQ(Parse("", {}, std::nullopt)->device, "cpu");
  EXPECT_EQ(Parse("", {"--device=cpu"}, "1")->device, "cpu");
  EXPECT_EQ(Parse("", {"--device=cuda:1"}, "")->device, "cuda:1");
}

TEST(TrainerParamsTest, CnnGetsItsOwnDefaults) {
  auto p = Parse(
      R"({"model": "cnn", "conv_channels": [16, 32, 64], "kernel_size": 5})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->hidden, ElementsAre(128));
  EXPECT_THAT(p->conv_channels, ElementsAre(16, 32, 64));
  EXPECT_EQ(p->kernel_size, 5);
}

TEST(TrainerParamsTest, StepScheduleDecaysEveryThirdOfTheRunByDefault) {
  auto p = Parse(R"({"schedule": "step", "epochs": 9})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->step_epochs, 3);
}

TEST(TrainerParamsTest, UnknownNameIsRejectedWithASuggestion) {
  auto p = Parse(R"({"lrr": 0.1})");
  ASSERT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(),
              HasSubstr("unknown parameter lrr (did you mean lr?)"));
}

TEST(TrainerParamsTest, ValuesOutOfRangeNameTheParameterAndTheRange) {
  struct Case {
    std::string json, expected;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"lr": 0})", "parameter lr: must be in (0, 100]"},
           {R"({"epochs": 0})", "parameter epochs: must be in [1"},
           {R"({"dropout": 1.0})", "parameter dropout: must be in [0, 1)"},
           {R"({"val_fraction": 0.9})",
            "parameter val_fraction: must be in (0, 0.5]"},
           {R"({"batch_size": -4})", "parameter batch_size"},
           {R"({"hidden": [128, 0]})",
            "parameter hidden: each width must be in [1, 65536]"},
           {R"({"model": "cnn", "kernel_size": 4})",
            "parameter kernel_size: must be odd"},
           {R"({"threads": 0})", "parameter threads"},
           {R"({"model": "cnn", "conv_channels": [4, 4, 4, 4, 4]})",
            "at most 4 pooled blocks"},
           {R"({"momentum": 1.5})", "parameter momentum"},
           {R"({"label_smoothing": -0.1})", "parameter label_smoothing"},
       }) {
    auto p = Parse(c.json);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(p.status().message(), HasSubstr(c.expected)) << c.json;
  }
}

TEST(TrainerParamsTest, WrongTypesSayWhatWasExpected) {
  EXPECT_THAT(Parse(R"({"lr": "fast"})").status().message(),
              HasSubstr("parameter lr: expected a number, got \"fast\""));
  EXPECT_THAT(Parse(R"({"epochs": 2.5})").status().message(),
              HasSubstr("parameter epochs: expected an integer, got 2.5"));
  EXPECT_THAT(Parse(R"({"batch_norm": "maybe"})").status().message(),
              HasSubstr("parameter batch_norm: expected True or False"));
  EXPECT_THAT(
      Parse(R"({"optimizer": "lbfgs"})").status().message(),
      HasSubstr("parameter optimizer: expected one of sgd, adam, adamw"));
  EXPECT_THAT(Parse(R"({"device": "tpu"})").status().message(),
              HasSubstr("parameter device: expected cpu, cuda or cuda:N"));
  EXPECT_THAT(Parse(R"({"hidden": {"a": 1}})").status().message(),
              HasSubstr("nested parameter blocks are not supported"));
}

TEST(TrainerParamsTest, OptionsThatDoNotApplyAreIgnoredWithAWarning) {
  // So that one sweep can vary the optimizer (or model) with momentum fixed.
  auto p = Parse(R"({"optimizer": "adam", "momentum": 0.9, "conv_channels": [8],
                     "step_gamma": 0.5})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->momentum, 0);
  EXPECT_THAT(
      p->warnings,
      ElementsAre(
          "parameter momentum is ignored: it applies to optimizer sgd, not "
          "adam",
          "parameter conv_channels is ignored: it applies to model cnn, not "
          "mlp",
          "parameter step_gamma is ignored: it applies to schedule step, not "
          "constant"));
  EXPECT_TRUE(Parse(R"({"lr": 0.1})")->warnings.empty());
}

TEST(TrainerParamsTest, ContradictionsAreErrors) {
  EXPECT_THAT(Parse(R"({"nesterov": true})").status().message(),
              HasSubstr("parameter nesterov: needs momentum > 0"));
  EXPECT_THAT(Parse(R"({"dataset": "csv"})").status().message(),
              HasSubstr("parameter data_dir: is required with dataset csv"));
  EXPECT_THAT(Parse(R"({"dataset": "csv", "data_dir": "/d", "model": "cnn"})")
                  .status()
                  .message(),
              HasSubstr("cnn needs image data"));
  EXPECT_THAT(Parse(R"({"dataset": "csv", "data_dir": "/d", "augment": true})")
                  .status()
                  .message(),
              HasSubstr("parameter augment: applies to image datasets only"));
  EXPECT_THAT(Parse(R"({"epochs": 2, "warmup_epochs": 3})").status().message(),
              HasSubstr("parameter warmup_epochs: must not exceed epochs"));
  EXPECT_THAT(Parse(R"({"freeze": "fc1"})").status().message(),
              HasSubstr("parameter freeze: needs init_from"));
}

TEST(TrainerParamsTest, MalformedInputIsInvalidArgument) {
  EXPECT_EQ(Parse("{not json").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("[1, 2]").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Parse("", {"lr=0.1"}).status().message(),
              HasSubstr("expected --key=value"));
}

TEST(TrainerParamsTest, KeepsTheParametersAsReceivedForCheckpoints) {
  auto p = Parse(R"({"lr": 0.5})", {"--epochs=2"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(nlohmann::json::parse(p->json),
            nlohmann::json::parse(R"({"lr":0.5,"epochs":2})"));
}

TEST(TrainerParamsTest, HelpListsEveryParameterAndTheExitCodes) {
  std::string help = ParamsHelp();
  for (const auto& name : ParamNames())
    EXPECT_THAT(help, HasSubstr("--" + name + " "));
  EXPECT_THAT(help, HasSubstr("3 CUDA asked for but not available"));
}

}  // namespace
}  // namespace sweep::trainer
